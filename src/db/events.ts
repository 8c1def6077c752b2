// Event storage: the batched insert the consumer runs, and the filtered, ordered reads the API serves.
import { and, asc, between, count, desc, eq, gte, lte, sql, type Column, type SQL } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { errorLog, events, type EventRow, type NewErrorLogRow, type NewEventRow } from "./schema";

export type Db = DrizzleD1Database<Record<string, unknown>>;

/** D1 binds at most 100 parameters per statement. */
export const D1_MAX_PARAMS = 100;

function chunk<T>(rows: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** Columns per row, so a chunk of rows stays under D1's parameter limit. */
const EVENT_COLUMNS = 8;
const ERROR_COLUMNS = 6;

/**
 * Inserts events (duplicates of a stored event_id are skipped) and error-log rows in one
 * D1 batch, which D1 runs as one transaction: all of it is stored, or none of it.
 */
export async function insertAll(db: Db, rows: NewEventRow[], errors: NewErrorLogRow[] = []): Promise<void> {
  const statements = [
    ...chunk(rows, Math.floor(D1_MAX_PARAMS / EVENT_COLUMNS)).map((c) =>
      db.insert(events).values(c).onConflictDoNothing({ target: events.eventId }),
    ),
    ...chunk(errors, Math.floor(D1_MAX_PARAMS / ERROR_COLUMNS)).map((c) => db.insert(errorLog).values(c)),
  ];
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}

export interface EventFilters {
  sessionId?: string;
  category?: string;
  name?: string;
  appId?: string;
  /** Inclusive bounds, microseconds. */
  after?: number;
  before?: number;
}

/** A position in the (timestamp, id) order: the last row of the previous page. */
export interface Position {
  timestamp: number;
  id: number;
}

// Equality on a column outside the chosen index is written `+col = ?`, which tells SQLite
// not to use an index for it: each filter shape then reads the one index built for it
// (SPEC §4) instead of whichever the planner guesses without statistics.
const unindexed = (column: Column, value: string) => sql`+${column} = ${value}`;

/**
 * The timestamp range as one index range. A position is folded into the bound on its side, since
 * SQLite seeks on only one of two bounds on a column and may pick the looser (scanning from
 * `before` down to the position); both bounds go as one BETWEEN, which keeps the planner on the
 * (category, name, timestamp) index when a range is added to category+name.
 */
function rangeOf(f: EventFilters, position: Position | undefined, direction: "asc" | "desc"): SQL | undefined {
  let { after, before } = f;
  if (position && direction === "desc") before = before === undefined ? position.timestamp : Math.min(before, position.timestamp);
  if (position && direction === "asc") after = after === undefined ? position.timestamp : Math.max(after, position.timestamp);
  if (after !== undefined && before !== undefined) return between(events.timestamp, after, before);
  if (after !== undefined) return gte(events.timestamp, after);
  if (before !== undefined) return lte(events.timestamp, before);
  return undefined;
}

export function whereOf(f: EventFilters, position?: Position, direction: "asc" | "desc" = "desc"): SQL | undefined {
  const indexed = f.sessionId !== undefined ? "session" : f.category !== undefined ? "category" : "name";
  const conditions: (SQL | undefined)[] = [
    f.sessionId !== undefined ? eq(events.sessionId, f.sessionId) : undefined,
    f.category !== undefined
      ? indexed === "category" ? eq(events.category, f.category) : unindexed(events.category, f.category)
      : undefined,
    f.name !== undefined
      ? indexed === "session" ? unindexed(events.name, f.name) : eq(events.name, f.name)
      : undefined,
    f.appId !== undefined ? unindexed(events.appId, f.appId) : undefined,
    rangeOf(f, position, direction),
    // Ties at the position's timestamp continue after its id. `+` keeps this term out of index
    // choice (the range above already seeks to the position); as an index term it led SQLite to
    // the (name, timestamp) index for category+name.
    position
      ? direction === "desc"
        ? sql`(+${events.timestamp}, ${events.id}) < (${position.timestamp}, ${position.id})`
        : sql`(+${events.timestamp}, ${events.id}) > (${position.timestamp}, ${position.id})`
      : undefined,
  ];
  return and(...conditions);
}

export interface Page {
  limit: number;
  offset?: number;
  after?: Position;
  direction?: "asc" | "desc";
}

/** One page of events, newest first (or oldest first with direction "asc"), ties broken by id. */
export function listEvents(db: Db, f: EventFilters, page: Page): Promise<EventRow[]> {
  const direction = page.direction ?? "desc";
  const order = direction === "desc" ? desc : asc;
  return db
    .select()
    .from(events)
    .where(whereOf(f, page.after, direction))
    .orderBy(order(events.timestamp), order(events.id))
    .limit(page.limit)
    .offset(page.offset ?? 0);
}

export async function countEvents(db: Db, f: EventFilters): Promise<number> {
  const [row] = await db.select({ n: count() }).from(events).where(whereOf(f));
  return row?.n ?? 0;
}
