// How many events match: whole hours from the roll-ups, the partial hours at a range's edges row by row.
import { and, count, eq, gte, lte, sql } from "drizzle-orm";
import { HOUR } from "../shared/timestamp";
import type { Db } from "./db";
import { type EventFilters, whereOf } from "./event-reads";
import { ALL_APPS, contextCounts, eventCounts, events } from "./schema";

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
  if (f.sessionId !== undefined || both || (first !== undefined && last !== undefined && first > last))
    return [exact(f)] as const;
  const dim =
    f.country !== undefined
      ? { dim: "country", value: f.country }
      : f.device !== undefined
        ? { dim: "device", value: f.device }
        : undefined;
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
