// Event storage: the batched insert the consumer runs, and the filtered, ordered reads the API serves.
import { and, asc, between, count, desc, eq, getTableColumns, gt, gte, lte, sql, type Column, type SQL } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { packBySize, utf8Length } from "../sizes";
import { ALL_APPS, contextCounts, contexts, errorLog, eventCounts, events, rollupMark, type EventRow, type NewErrorLogRow, type NewEventRow } from "./schema";

export type Db = DrizzleD1Database<Record<string, unknown>>;

/**
 * An event's columns and its context's JSON text (null without one): what every reader (the
 * query API, receipts, the export, the archive) selects and renders. One primary-key read of
 * contexts per event that has a context.
 */
export const eventColumns = {
  ...getTableColumns(events),
  contextBody: sql<string | null>`(SELECT body FROM ${contexts} WHERE ${contexts.id} = ${events.context})`.as("context_body"),
};
export type StoredEvent = EventRow & { contextBody: string | null };

/** D1 binds at most 100 parameters per statement. */
export const D1_MAX_PARAMS = 100;

function chunk<T>(rows: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** Columns per error-log row, so a chunk of rows stays under D1's parameter limit. */
const ERROR_COLUMNS = 11;

/**
 * Bytes of events per INSERT. Events go in as one bound JSON array per statement, read back
 * by SQLite's json_each: one statement per ~1 MB instead of one per 12 rows (D1 binds at most
 * 100 parameters, and caps a bound value at 2 MB). Measured in BENCHMARKS.md.
 */
export const INSERT_JSON_BYTES = 1_000_000;

/** An event to store, with its context as the JSON text of a contexts row (null: none). */
export type NewContextEventRow = Omit<NewEventRow, "context"> & { contextBody?: string | null };

/** The contexts the events name, each inserted once (one already stored is left as it is). */
function insertContexts(db: Db, rows: NewContextEventRow[]) {
  const bodies = [...new Set(rows.map((r) => r.contextBody).filter((b): b is string => typeof b === "string"))];
  if (bodies.length === 0) return [];
  return packBySize(bodies, (b) => utf8Length(JSON.stringify(b)) + 1, INSERT_JSON_BYTES).map((group) =>
    db.insert(contexts).select(sql`SELECT NULL, value FROM json_each(${JSON.stringify(group)}) WHERE true`).onConflictDoNothing(),
  );
}

function insertEvents(db: Db, rows: NewContextEventRow[]) {
  const tuples = rows.map((r) =>
    JSON.stringify([r.app, r.eventId, r.sessionId, r.category, r.name, r.data, r.timestamp, r.receivedAt, r.contextBody ?? null, r.country ?? null, r.device ?? null]),
  );
  return packBySize(tuples, (t) => utf8Length(t) + 1, INSERT_JSON_BYTES).map((group) =>
    db
      .insert(events)
      .select(
        // Columns in table order; NULL id lets SQLite assign the next rowid; the UUID goes in as
        // its 16 bytes. `WHERE true` keeps SQLite from reading the upsert's ON as a join constraint.
        sql`SELECT NULL, value ->> 0, unhex(replace(value ->> 1, '-', '')), value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7,
              (SELECT id FROM ${contexts} WHERE body = value ->> 8), value ->> 9, value ->> 10
            FROM json_each(${`[${group.join(",")}]`}) WHERE true`,
      )
      // The one uniqueness to meet is (event_id, app): a redelivered or resent event is skipped.
      .onConflictDoNothing(),
  );
}

/** The rollup bucket width: one hour, in microseconds. */
export const HOUR = 3_600_000_000;

// Counting what reached the table: after the inserts, every row above the stored mark is added
// to the hourly counts under each of the four shapes, then the mark moves to the highest id.
// Rows that arrived any other way (a consumer of the previous deploy still running, a manual
// import) are above the mark too, so they are counted by the next batch; duplicates skipped by
// the insert never become rows. All inside the batch's transaction, so counts never drift.
// A literal, not a bound parameter: drizzle's D1 batch cannot bind parameters of a raw statement.
const H = sql.raw(String(HOUR));

/**
 * Adds the events matching `where` to the hourly counts under each of the four shapes, for their
 * application and for all applications, or takes them away (`sign` -1, before deleting them:
 * retention.ts).
 */
export function rollUpWhere(where: SQL, sign: 1 | -1 = 1): SQL {
  const n = sql.raw(sign === 1 ? "count(*)" : "-count(*)");
  return sql`INSERT INTO ${eventCounts} (category, name, app, hour, n)
  SELECT CASE WHEN k IN (1, 2) THEN c ELSE '' END AS cc, CASE WHEN k IN (1, 3) THEN nm ELSE '' END AS nn,
    CASE WHEN s = 1 THEN a ELSE ${sql.raw(String(ALL_APPS))} END AS aa, h, ${n}
  FROM (
    SELECT category AS c, name AS nm, (timestamp - ((timestamp % ${H}) + ${H}) % ${H}) / ${H} AS h, app AS a
    FROM ${events} WHERE ${where}
  ) AS fresh, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) AS shape,
    (SELECT 1 AS s UNION ALL SELECT 2) AS scope
  WHERE true GROUP BY cc, nn, aa, h
  ON CONFLICT (category, name, app, hour) DO UPDATE SET n = n + excluded.n`;
}

/**
 * The statements that take the events matching `where` out of every roll-up, to run in one D1
 * batch just before the DELETE of the same rows: what retention and erasure both do, so counts
 * stay exact for what is left.
 */
export function uncountWhere(where: SQL): SQL[] {
  return [rollUpWhere(where, -1), contextRollUpWhere(where, -1)];
}

/**
 * Adds the events matching `where` to the hourly counts by country and by device
 * (context_counts), under the same four (category, name) shapes and two scopes as
 * rollUpWhere, or takes them away (`sign` -1). Events without the value are not counted.
 */
export function contextRollUpWhere(where: SQL, sign: 1 | -1 = 1): SQL {
  const n = sql.raw(sign === 1 ? "sum(m)" : "-sum(m)");
  // The events are grouped once, into a materialized table (a batch has few distinct types, hours
  // and contexts), so the 16 shapes multiply the groups, not the rows. Without MATERIALIZED SQLite
  // runs the grouping as a co-routine once per shape: 10–17 µs per event instead of under 1
  // (node:sqlite, 500-event batches; BENCHMARKS.md "Edge context").
  return sql`WITH fresh AS MATERIALIZED (
    SELECT category AS c, name AS nm, (timestamp - ((timestamp % ${H}) + ${H}) % ${H}) / ${H} AS h, app AS a,
      country AS co, device AS dv, count(*) AS m
    FROM ${events} WHERE (${where}) AND (country IS NOT NULL OR device IS NOT NULL)
    GROUP BY c, nm, h, a, co, dv
  )
  INSERT INTO ${contextCounts} (dim, value, category, name, app, hour, n)
  SELECT CASE WHEN d = 1 THEN 'country' ELSE 'device' END AS dd, CASE WHEN d = 1 THEN co ELSE dv END AS vv,
    CASE WHEN k IN (1, 2) THEN c ELSE '' END AS cc, CASE WHEN k IN (1, 3) THEN nm ELSE '' END AS nn,
    CASE WHEN s = 1 THEN a ELSE ${sql.raw(String(ALL_APPS))} END AS aa, h, ${n}
  FROM fresh, (SELECT 1 AS d UNION ALL SELECT 2) AS dims,
    (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) AS shape,
    (SELECT 1 AS s UNION ALL SELECT 2) AS scope
  WHERE (CASE WHEN d = 1 THEN co ELSE dv END) IS NOT NULL GROUP BY dd, vv, cc, nn, aa, h
  ON CONFLICT (app, dim, value, category, name, hour) DO UPDATE SET n = n + excluded.n`;
}

const fresh = sql`id > coalesce((SELECT last_id FROM ${rollupMark} WHERE id = 1), 0)`;
const rollUp = rollUpWhere(fresh);
const contextRollUp = contextRollUpWhere(fresh);
const advanceMark = sql`INSERT INTO ${rollupMark} (id, last_id) VALUES (1, (SELECT coalesce(max(id), 0) FROM ${events}))
  ON CONFLICT (id) DO UPDATE SET last_id = max(last_id, excluded.last_id)`;

/**
 * Inserts events (an event_id its application already stored is skipped), their counts, and
 * error-log rows (an entry already logged is skipped) in one D1 batch, which D1 runs as one
 * transaction: all of it is stored, or none of it.
 */
export async function insertAll(db: Db, rows: NewContextEventRow[], errors: NewErrorLogRow[] = []): Promise<void> {
  const inserts = [...insertContexts(db, rows), ...insertEvents(db, rows)];
  const statements = [
    ...(inserts.length > 0 ? [...inserts, db.run(rollUp), db.run(contextRollUp), db.run(advanceMark)] : []),
    // An entry whose dedup key is already logged (a redelivered message) is skipped.
    ...chunk(errors, Math.floor(D1_MAX_PARAMS / ERROR_COLUMNS)).map((c) => db.insert(errorLog).values(c).onConflictDoNothing()),
  ];
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

export interface EventFilters {
  sessionId?: string;
  category?: string;
  name?: string;
  /** Context values (events.country, events.device). */
  country?: string;
  device?: string;
  /** One application's number: a read scoped to it. Without it, every application's events. */
  app?: number;
  /** Inclusive bounds, microseconds. */
  after?: number;
  before?: number;
}

/**
 * A position in the (timestamp, id) order: the first row of the page to read, which the
 * previous page fetched as its one row of lookahead. Reading from it inclusive makes a page
 * read exactly limit + 1 rows (its own and the next page's first).
 */
export interface Position {
  timestamp: number;
  id: number;
  /**
   * False when the position is the first row of its timestamp in the walk (the previous page
   * ended on another timestamp): the page is then one range from that timestamp, with no id
   * condition. True or unknown: rows of the same timestamp came before it, so the page seeks to its id.
   */
  tie?: boolean;
}

// Equality on a column outside the chosen index is written `+col = ?`, which tells SQLite
// not to use an index for it: each filter shape then reads the one index built for it
// (SPEC §4) instead of whichever the planner guesses without statistics.
const unindexed = (column: Column, value: string | number) => sql`+${column} = ${value}`;

// A context filter takes precedence over category and name: it is what narrows an explorer's
// view of a type down further, and its index is partial (only events with context have entries).
type Shape = "session" | "country" | "device" | "category" | "name" | "time";
const shapeOf = (f: EventFilters): Shape =>
  f.sessionId !== undefined
    ? "session"
    : f.country !== undefined
      ? "country"
      : f.device !== undefined
        ? "device"
        : f.category !== undefined
          ? "category"
          : f.name !== undefined
            ? "name"
            : "time";

/**
 * The equality filters, each written so the shape's own index is the one used: a scoped read's
 * application leads its index (events_app_*), a read across all applications uses the global
 * one of the same shape; a session's index serves both, the application checked on its rows.
 */
function filterTerms(f: EventFilters): (SQL | undefined)[] {
  const shape = shapeOf(f);
  return [
    f.sessionId !== undefined ? eq(events.sessionId, f.sessionId) : undefined,
    f.app === undefined ? undefined : shape === "session" ? unindexed(events.app, f.app) : eq(events.app, f.app),
    f.country !== undefined ? (shape === "country" ? eq(events.country, f.country) : unindexed(events.country, f.country)) : undefined,
    f.device !== undefined ? (shape === "device" ? eq(events.device, f.device) : unindexed(events.device, f.device)) : undefined,
    f.category !== undefined ? (shape === "category" ? eq(events.category, f.category) : unindexed(events.category, f.category)) : undefined,
    f.name !== undefined ? (shape === "category" || shape === "name" ? eq(events.name, f.name) : unindexed(events.name, f.name)) : undefined,
  ];
}

/**
 * The timestamp range as one index range: both bounds go as one BETWEEN (SQLite seeks on
 * only one of two separate bounds on a column, and BETWEEN keeps the planner on the
 * (category, name, timestamp) index when a range is added to category+name).
 */
function rangeTerm(after: number | undefined, before: number | undefined): SQL | undefined {
  if (after !== undefined && before !== undefined) return between(events.timestamp, after, before);
  if (after !== undefined) return gte(events.timestamp, after);
  if (before !== undefined) return lte(events.timestamp, before);
  return undefined;
}

export function whereOf(f: EventFilters): SQL | undefined {
  return and(...filterTerms(f), rangeTerm(f.after, f.before));
}

/**
 * The rows from a position on. From a clean position (the first of its timestamp in the walk),
 * one range from its timestamp. Otherwise two index range reads that each seek: the rest of the
 * position's own timestamp from its id (`timestamp = T AND id <= P`: every index ends in
 * timestamp and then the rowid, so this is one seek), then the timestamps past it. A single
 * row-value condition `(timestamp, id) <= (T, P)` cannot seek on the id, so a page deep inside
 * a group of equal timestamps would re-read the rest of the group.
 */
function positionArms(f: EventFilters, p: Position, direction: "asc" | "desc"): SQL[] {
  const filters = filterTerms(f);
  if (p.tie === false) {
    return direction === "desc"
      ? [and(...filters, rangeTerm(f.after, f.before === undefined ? p.timestamp : Math.min(f.before, p.timestamp)))!]
      : [and(...filters, rangeTerm(f.after === undefined ? p.timestamp : Math.max(f.after, p.timestamp), f.before))!];
  }
  const inRange = (f.after === undefined || p.timestamp >= f.after) && (f.before === undefined || p.timestamp <= f.before);
  const tie = inRange
    ? and(...filters, eq(events.timestamp, p.timestamp), direction === "desc" ? lte(events.id, p.id) : gte(events.id, p.id))
    : undefined;
  const beyond =
    direction === "desc"
      ? and(...filters, rangeTerm(f.after, f.before === undefined ? p.timestamp - 1 : Math.min(f.before, p.timestamp - 1)))
      : and(...filters, rangeTerm(f.after === undefined ? p.timestamp + 1 : Math.max(f.after, p.timestamp + 1), f.before));
  return tie ? [tie, beyond!] : [beyond!];
}

export interface Page {
  limit: number;
  offset?: number;
  /** A cursor position: the page starts at this row, inclusive. */
  after?: Position;
  direction?: "asc" | "desc";
}

/** One page of events, newest first (or oldest first with direction "asc"), ties broken by id. A batchable query. */
export function listEvents(db: Db, f: EventFilters, page: Page) {
  const direction = page.direction ?? "desc";
  const order = direction === "desc" ? desc : asc;
  const read = (where: SQL | undefined) =>
    db.select(eventColumns).from(events).where(where).orderBy(order(events.timestamp), order(events.id)).limit(page.limit);
  if (page.after === undefined) return read(whereOf(f)).offset(page.offset ?? 0);
  const [first, beyond] = positionArms(f, page.after, direction);
  if (beyond === undefined) return read(first);
  // Each arm is an ordered, limited subquery, and UNION ALL runs its arms in turn: when the
  // position's own timestamp fills the page the second arm is never started, so a page reads
  // exactly its own rows. (A compound ORDER BY would merge the arms and read one more row.)
  return db
    .select()
    .from(read(first).as("tie"))
    .unionAll(db.select().from(read(beyond).as("beyond")))
    .limit(page.limit) as unknown as ReturnType<typeof read>;
}

/**
 * Events above an id that match the filters, in id order: the export's read of what the archive
 * does not hold yet. Read by rowid from `afterId` (every other term is kept out of index choice),
 * so it costs the rows above the watermark, however wide the time range.
 */
export function listAboveId(db: Db, f: EventFilters, afterId: number, limit: number) {
  return db
    .select(eventColumns)
    .from(events)
    .where(
      and(
        gt(events.id, afterId),
        f.sessionId !== undefined ? unindexed(events.sessionId, f.sessionId) : undefined,
        f.category !== undefined ? unindexed(events.category, f.category) : undefined,
        f.name !== undefined ? unindexed(events.name, f.name) : undefined,
        f.country !== undefined ? unindexed(events.country, f.country) : undefined,
        f.device !== undefined ? unindexed(events.device, f.device) : undefined,
        f.app !== undefined ? unindexed(events.app, f.app) : undefined,
        f.after !== undefined ? sql`+${events.timestamp} >= ${f.after}` : undefined,
        f.before !== undefined ? sql`+${events.timestamp} <= ${f.before}` : undefined,
      ),
    )
    .orderBy(events.id)
    .limit(limit);
}

/**
 * How many events match. A session's events are counted in its index (sessions are small).
 * Otherwise whole hours come from the hourly rollup and only the partial hours at the edges
 * of a time range are counted row by row: a count over a million events reads a few hundred
 * rollup rows plus at most two hours of matching events, and stays exact.
 */
export async function countEvents(db: Db, f: EventFilters): Promise<number> {
  const [first, ...rest] = countQueries(db, f);
  return sumCounts(await db.batch([first, ...rest]));
}

/** Adds up what the count queries returned. */
export function sumCounts(results: readonly unknown[]): number {
  return results.reduce<number>((total, rows) => total + Number((rows as { n: number }[])[0]?.n ?? 0), 0);
}

/**
 * The queries whose results add up to how many events match, to run in one D1 batch.
 * A session's events are counted in its index (sessions are small). Otherwise whole hours
 * come from the hourly rollup and only the partial hours at the edges of a time range are
 * counted row by row: a count over a million events reads a few hundred rollup rows plus at
 * most two hours of matching events, and stays exact.
 */
export function countQueries(db: Db, f: EventFilters) {
  const exact = (g: EventFilters) => db.select({ n: count() }).from(events).where(whereOf(g));
  // Whole hours inside [after, before]: first..last (either open when its bound is absent).
  const first = f.after === undefined ? undefined : Math.ceil(f.after / HOUR);
  const last = f.before === undefined ? undefined : Math.floor((f.before + 1) / HOUR) - 1;
  // Country and device together have no roll-up: those are counted in the country's index.
  const both = f.country !== undefined && f.device !== undefined;
  if (f.sessionId !== undefined || both || (first !== undefined && last !== undefined && first > last)) return [exact(f)] as const;
  const dim = f.country !== undefined ? { dim: "country", value: f.country } : f.device !== undefined ? { dim: "device", value: f.device } : undefined;
  const rolled = dim
    ? db
        .select({ n: sql<number>`coalesce(sum(${contextCounts.n}), 0)` })
        .from(contextCounts)
        .where(
          and(
            eq(contextCounts.app, f.app ?? ALL_APPS),
            eq(contextCounts.dim, dim.dim),
            eq(contextCounts.value, dim.value),
            eq(contextCounts.category, f.category ?? ""),
            eq(contextCounts.name, f.name ?? ""),
            first !== undefined ? gte(contextCounts.hour, first) : undefined,
            last !== undefined ? lte(contextCounts.hour, last) : undefined,
          ),
        )
    : db
    .select({ n: sql<number>`coalesce(sum(${eventCounts.n}), 0)` })
    .from(eventCounts)
    .where(
      and(
        eq(eventCounts.category, f.category ?? ""),
        eq(eventCounts.name, f.name ?? ""),
        first !== undefined ? gte(eventCounts.hour, first) : undefined,
        last !== undefined ? lte(eventCounts.hour, last) : undefined,
        eq(eventCounts.app, f.app ?? ALL_APPS),
      ),
    );
  const head = first !== undefined && f.after! < first * HOUR ? [exact({ ...f, before: first * HOUR - 1 })] : [];
  const tail = last !== undefined && f.before! >= (last + 1) * HOUR ? [exact({ ...f, after: (last + 1) * HOUR })] : [];
  return [rolled, ...head, ...tail] as const;
}
