// The error log: refused events, malformed queue messages, consumer and dead-letter failures; and
// its hourly counts (error_counts, kept by a trigger as entries are written), which the summary reads.
import { and, asc, between, count, desc, eq, gte, lte, type SQL, sql } from "drizzle-orm";
import type { Db } from "./db";
import { type ErrorLogRow, errorCounts, errorLog } from "./schema";

export interface ErrorFilters {
  kind?: string;
  appId?: string;
  category?: string;
  name?: string;
  /** The first reason's field and rule (error_log.field, error_log.rule). */
  field?: string;
  rule?: string;
  after?: number;
  before?: number;
}

function whereOf(f: ErrorFilters): SQL | undefined {
  return and(
    f.kind !== undefined ? eq(errorLog.kind, f.kind) : undefined,
    f.appId !== undefined ? eq(errorLog.appId, f.appId) : undefined,
    f.category !== undefined ? eq(errorLog.category, f.category) : undefined,
    f.name !== undefined ? eq(errorLog.name, f.name) : undefined,
    f.field !== undefined ? eq(errorLog.field, f.field) : undefined,
    f.rule !== undefined ? eq(errorLog.rule, f.rule) : undefined,
    f.after !== undefined ? gte(errorLog.occurredAt, f.after) : undefined,
    f.before !== undefined ? lte(errorLog.occurredAt, f.before) : undefined,
  );
}

export function listErrors(db: Db, f: ErrorFilters, limit: number, offset: number): Promise<ErrorLogRow[]> {
  return db
    .select()
    .from(errorLog)
    .where(whereOf(f))
    .orderBy(desc(errorLog.occurredAt), desc(errorLog.id))
    .limit(limit)
    .offset(offset);
}

export async function countErrors(db: Db, f: ErrorFilters): Promise<number> {
  const [row] = await db.select({ n: count() }).from(errorLog).where(whereOf(f));
  return row?.n ?? 0;
}

export interface SummaryFilters {
  /** Whole hours, floor(microseconds / 1 hour), both inclusive. */
  firstHour: number;
  lastHour: number;
  appId?: string;
  kind?: string;
}

/** One group of the summary: '' in a text column means the entry had none. */
export interface SummaryGroup {
  kind: string;
  rule: string;
  category: string;
  name: string;
  field: string;
  n: number;
}

/**
 * The summary's two queries, to run in one D1 batch: the groups (kind, rule, category, name, field)
 * with their counts, largest first (`limit` of them), and the total per kind. Both read
 * error_counts rows of the window only, one per hour and group: never the error log. A scoped read
 * seeks its application's rows (error_counts_app), a read across applications the hour range.
 */
export function summaryQueries(db: Db, f: SummaryFilters, limit: number) {
  const where = and(
    f.appId !== undefined ? eq(errorCounts.appId, f.appId) : undefined,
    between(errorCounts.hour, f.firstHour, f.lastHour),
    f.kind !== undefined ? eq(errorCounts.kind, f.kind) : undefined,
  );
  const n = sql<number>`sum(${errorCounts.n})`.mapWith(Number);
  const group = [
    errorCounts.kind,
    errorCounts.rule,
    errorCounts.category,
    errorCounts.name,
    errorCounts.field,
  ] as const;
  const groups = db
    .select({
      kind: errorCounts.kind,
      rule: errorCounts.rule,
      category: errorCounts.category,
      name: errorCounts.name,
      field: errorCounts.field,
      n,
    })
    .from(errorCounts)
    .where(where)
    .groupBy(...group)
    .orderBy(desc(n), ...group.map((c) => asc(c)))
    .limit(limit);
  const totals = db
    .select({ kind: errorCounts.kind, n })
    .from(errorCounts)
    .where(where)
    .groupBy(errorCounts.kind)
    .orderBy(errorCounts.kind);
  return [groups, totals] as const;
}
