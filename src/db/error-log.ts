// The error log: refused events, malformed queue messages, consumer and dead-letter failures.
import { and, count, desc, eq, gte, lte, type SQL } from "drizzle-orm";
import type { Db } from "./events";
import { errorLog, type ErrorLogRow } from "./schema";

export interface ErrorFilters {
  kind?: string;
  appId?: string;
  after?: number;
  before?: number;
}

function whereOf(f: ErrorFilters): SQL | undefined {
  return and(
    f.kind !== undefined ? eq(errorLog.kind, f.kind) : undefined,
    f.appId !== undefined ? eq(errorLog.appId, f.appId) : undefined,
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
