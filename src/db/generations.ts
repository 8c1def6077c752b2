// The hot tier's generations: events are stored in one table per span of event time
// (events_g<n> holds timestamps in [n × span, (n + 1) × span)), so retention and the byte budget
// drop a whole table — no row writes — where deleting rows costs one write each. Each table is
// WITHOUT ROWID, clustered by (app, timestamp, id): its own key is the time index, and three
// indexes serve the rest (the (event_id, app) dedup and receipts, the type, the session). Events
// older than the oldest live generation go into that generation, whose span then reaches back to
// the beginning of time; generation tables are created by the consumer as it needs them
// (CREATE … IF NOT EXISTS in its own batch) and dropped by the maintenance once archived.
import { sql } from "drizzle-orm";
import { blob, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { HOUR } from "../shared/timestamp";
import type { Db } from "./db";
import { generations, storageState } from "./schema";

/** A generation's span when none is set yet: HOT_DAYS ÷ 4 (whole hours, 1 hour to 7 days), so about five are live. */
export function defaultSpan(hotDays: number): number {
  const hours = Math.min(7 * 24, Math.max(1, Math.round((hotDays * 24) / 4)));
  return hours * HOUR;
}

/** The generation a timestamp's span is, before the oldest live one is taken into account. */
export const genOf = (timestamp: number, span: number) => Math.floor(timestamp / span);

/** events_g12, or events_gm3 for a span before 1970. */
export const tableName = (gen: number) => (gen < 0 ? `events_gm${-gen}` : `events_g${gen}`);

function defineTable(gen: number) {
  return sqliteTable(tableName(gen), {
    app: integer("app").notNull(),
    timestamp: integer("timestamp").notNull(),
    id: integer("id").notNull(),
    type: integer("type").notNull(),
    session: integer("session").notNull(),
    eventId: blob("event_id").notNull(),
    // received_at − timestamp: a few bytes where the instant itself takes eight.
    received: integer("received").notNull(),
    data: text("data").notNull(),
    context: integer("context"),
  });
}

export type GenerationTable = ReturnType<typeof defineTable>;
const tables = new Map<number, GenerationTable>();

/** The Drizzle table of a generation (one object per generation per isolate). */
export function generationTable(gen: number): GenerationTable {
  let table = tables.get(gen);
  if (!table) {
    table = defineTable(gen);
    tables.set(gen, table);
  }
  return table;
}

/**
 * The statements that create a generation's table and indexes if they do not exist, and its
 * generations row. They cost nothing when it exists, so the consumer sends them with every batch
 * that writes to it: a generation dropped a moment before comes back rather than failing the write.
 */
export function createGeneration(gen: number, now = Date.now()) {
  const t = tableName(gen);
  return [
    sql.raw(`CREATE TABLE IF NOT EXISTS ${t} (
      app INTEGER NOT NULL, timestamp INTEGER NOT NULL, id INTEGER NOT NULL, type INTEGER NOT NULL,
      session INTEGER NOT NULL, event_id BLOB NOT NULL, received INTEGER NOT NULL, data TEXT NOT NULL,
      context INTEGER, PRIMARY KEY (app, timestamp, id)) WITHOUT ROWID`),
    sql.raw(`CREATE UNIQUE INDEX IF NOT EXISTS ${t}_event_id ON ${t} (event_id, app)`),
    sql.raw(`CREATE INDEX IF NOT EXISTS ${t}_type ON ${t} (app, type, timestamp)`),
    sql.raw(`CREATE INDEX IF NOT EXISTS ${t}_session ON ${t} (session, timestamp, id)`),
    sql`INSERT INTO ${generations} (gen, max_id, created_at) VALUES (${sql.raw(String(gen))}, 0, ${sql.raw(String(now * 1000))}) ON CONFLICT (gen) DO NOTHING`,
  ];
}

/**
 * The planner's statistics for a new generation (sqlite_stat1, read again at once): without them
 * SQLite takes the table's own key for `app = ? AND type = ? ORDER BY timestamp` — it is
 * covering, and it cannot tell the type narrows anything — and reads every row of the
 * application. These say what is true of any generation: a type is a small part of an
 * application's events, a session a few dozen, an event id one; ANALYZE would only say it slowly.
 */
export function generationStatistics(gen: number) {
  const t = tableName(gen);
  const rows = [
    // The table's own key (app, timestamp, id), which SQLite names after the table.
    [t, "1000000 100000 2 1"],
    [`${t}_type`, "1000000 100000 1000 2 1"],
    [`${t}_session`, "1000000 20 2 1"],
    [`${t}_event_id`, "1000000 1 1"],
  ];
  return [
    sql.raw(
      `INSERT OR REPLACE INTO sqlite_stat1 (tbl, idx, stat) VALUES ${rows.map(([idx, stat]) => `('${t}', '${idx}', '${stat}')`).join(", ")}`,
    ),
    sql.raw("ANALYZE sqlite_schema"),
  ];
}

export interface Generations {
  /** Microseconds of event time per generation. */
  span: number;
  /** The live generations, newest first. */
  live: number[];
}

let cached: { value: Generations; at: number } | undefined;
/** How long a reader trusts its list: new generations start in the future (the consumer creates them as their time comes), so a list this old misses none with events. */
const CACHE_MS = 30_000;

/** The span (set on first use from HOT_DAYS) and the live generations, newest first. */
export async function readGenerations(
  db: Db,
  hotDays: number,
  { fresh = false, readOnly = false }: { fresh?: boolean; readOnly?: boolean } = {},
): Promise<Generations> {
  if (!fresh && cached && Date.now() - cached.at < CACHE_MS) return cached.value;
  const [state, rows] = await db.batch(generationReads(db));
  if (readOnly) return generationsOf(state, rows, hotDays);
  let span = state[0]?.span ?? null;
  if (span === null) {
    span = defaultSpan(hotDays);
    await db.run(
      sql`INSERT INTO ${storageState} (id, gen_span) VALUES (1, ${sql.raw(String(span))})
        ON CONFLICT (id) DO UPDATE SET gen_span = coalesce(gen_span, excluded.gen_span)`,
    );
    const [again] = await db.select({ span: storageState.genSpan }).from(storageState).limit(1);
    span = again?.span ?? span;
  }
  const value = { span, live: rows.map((r) => r.gen) };
  cached = { value, at: Date.now() };
  return value;
}

/** The two reads the list is made of, for a reader that sends them in a batch of its own. */
export function generationReads(db: Db) {
  return [
    db.select({ span: storageState.genSpan }).from(storageState).limit(1),
    db.select({ gen: generations.gen }).from(generations).orderBy(sql`${generations.gen} DESC`),
  ] as const;
}

/**
 * The list those reads answered, as a reader takes it (and the isolate remembers it): a reader
 * (perhaps on a replica) writes nothing, so before the first write the span is HOT_DAYS' default
 * (there is nothing to read anyway).
 */
export function generationsOf(state: { span: number | null }[], rows: { gen: number }[], hotDays: number) {
  const span = state[0]?.span ?? null;
  const value: Generations = { span: span ?? defaultSpan(hotDays), live: rows.map((r) => r.gen) };
  if (span !== null) cached = { value, at: Date.now() };
  return value;
}

/** Forgets the isolate's list (after a drop, or when a table it named is gone). */
export function forgetGenerations(): void {
  cached = undefined;
}

/** The generation an event is stored in: its span's, or the oldest live one when that is newer. */
export function routeOf(timestamp: number, g: Generations): number {
  const own = genOf(timestamp, g.span);
  const oldest = g.live.at(-1);
  return oldest !== undefined && own < oldest ? oldest : own;
}

/**
 * The live generations that may hold events in [after, before], newest first: those whose span
 * meets the range, and the oldest, which also holds everything before its own span.
 */
export function generationsIn(g: Generations, after?: number, before?: number): number[] {
  const oldest = g.live.at(-1);
  return g.live.filter((gen) => {
    const start = gen === oldest ? -Infinity : gen * g.span;
    const end = (gen + 1) * g.span - 1;
    return (after === undefined || end >= after) && (before === undefined || start <= before);
  });
}

/** "no such table: events_g…": a generation dropped after the list was read. */
export const isMissingGeneration = (err: unknown) => {
  for (let e: unknown = err; e instanceof Error; e = e.cause)
    if (/no such table: events_g/.test(e.message)) return true;
  return false;
};
