// Reading events: the filters every GET route takes, each shape served by its own index, and
// pages by offset or by cursor position.
import { and, asc, between, type Column, desc, eq, getTableColumns, gt, gte, lte, type SQL, sql } from "drizzle-orm";
import type { Db } from "./db";
import { contexts, type EventRow, events } from "./schema";

/**
 * An event's columns and its context's JSON text (null without one): what every reader (the
 * query API, receipts, the export, the archive) selects and renders. One primary-key read of
 * contexts per event that has a context.
 */
export const eventColumns = {
  ...getTableColumns(events),
  contextBody: sql<string | null>`(SELECT body FROM ${contexts} WHERE ${contexts.id} = ${events.context})`.as(
    "context_body",
  ),
};
export type StoredEvent = EventRow & { contextBody: string | null };

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
    f.country !== undefined
      ? shape === "country"
        ? eq(events.country, f.country)
        : unindexed(events.country, f.country)
      : undefined,
    f.device !== undefined
      ? shape === "device"
        ? eq(events.device, f.device)
        : unindexed(events.device, f.device)
      : undefined,
    f.category !== undefined
      ? shape === "category"
        ? eq(events.category, f.category)
        : unindexed(events.category, f.category)
      : undefined,
    f.name !== undefined
      ? shape === "category" || shape === "name"
        ? eq(events.name, f.name)
        : unindexed(events.name, f.name)
      : undefined,
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
  const inRange =
    (f.after === undefined || p.timestamp >= f.after) && (f.before === undefined || p.timestamp <= f.before);
  const tie = inRange
    ? and(
        ...filters,
        eq(events.timestamp, p.timestamp),
        direction === "desc" ? lte(events.id, p.id) : gte(events.id, p.id),
      )
    : undefined;
  const beyond =
    direction === "desc"
      ? and(
          ...filters,
          rangeTerm(f.after, f.before === undefined ? p.timestamp - 1 : Math.min(f.before, p.timestamp - 1)),
        )
      : and(
          ...filters,
          rangeTerm(f.after === undefined ? p.timestamp + 1 : Math.max(f.after, p.timestamp + 1), f.before),
        );
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
    db
      .select(eventColumns)
      .from(events)
      .where(where)
      .orderBy(order(events.timestamp), order(events.id))
      .limit(page.limit);
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
