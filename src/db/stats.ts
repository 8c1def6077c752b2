// Event counts per hour split into series (by category or by name), read from the hourly roll-ups
// (type_counts, summed over generations), never from the events: what the stats endpoint and the explorer's chart draw.
import { and, between, eq } from "drizzle-orm";
import type { Db } from "./db";
import { ALL_APPS, contextValueCounts as contextCounts, typeCounts as eventCounts } from "./schema";

export interface SeriesFilters {
  /** What splits the events into series. */
  by: "category" | "name";
  category?: string;
  name?: string;
  /** One application's number; undefined: every application (the ALL_APPS rows). */
  app?: number;
  /** Only events with this country or device (read from context_counts). */
  context?: { dim: "country" | "device"; value: string };
  /** Whole hours, floor(microseconds / 1 hour), both inclusive. */
  firstHour: number;
  lastHour: number;
}

export interface SeriesRow {
  /** The series' category or name; '' for the row counting every series of the hour (the total). */
  key: string;
  hour: number;
  n: number;
}

/**
 * One row per hour and series with events in it, and one per hour for the hour's total (key ''),
 * over the window. Split by category: the rows of every category for the name filter (or for any
 * name, ''), a range of type_counts_app_name; split by name, likewise through
 * type_counts_app_category. With the split's own filter set (by category, category given) there is
 * one series, a range of the primary key. Either way the read touches the window's rows of the
 * matching shape only: never other hours, other applications, or the (category, name) pairs.
 */
export function seriesCounts(db: Db, f: SeriesFilters) {
  if (f.context !== undefined) return contextSeriesCounts(db, f, f.context);
  const key = f.by === "category" ? eventCounts.category : eventCounts.name;
  return db
    .select({ key, hour: eventCounts.hour, n: eventCounts.n })
    .from(eventCounts)
    .where(
      and(
        eq(eventCounts.app, f.app ?? ALL_APPS),
        f.by === "name" || f.category !== undefined ? eq(eventCounts.category, f.category ?? "") : undefined,
        f.by === "category" || f.name !== undefined ? eq(eventCounts.name, f.name ?? "") : undefined,
        between(eventCounts.hour, f.firstHour, f.lastHour),
      ),
    );
}

/**
 * The same rows for the events of one country or one device type, from context_value_counts: led by
 * (app, dim, value), then through context_value_counts_app_name or _app_category as above.
 */
function contextSeriesCounts(db: Db, f: SeriesFilters, context: { dim: string; value: string }) {
  const key = f.by === "category" ? contextCounts.category : contextCounts.name;
  return db
    .select({ key, hour: contextCounts.hour, n: contextCounts.n })
    .from(contextCounts)
    .where(
      and(
        eq(contextCounts.app, f.app ?? ALL_APPS),
        eq(contextCounts.dim, context.dim),
        eq(contextCounts.value, context.value),
        f.by === "name" || f.category !== undefined ? eq(contextCounts.category, f.category ?? "") : undefined,
        f.by === "category" || f.name !== undefined ? eq(contextCounts.name, f.name ?? "") : undefined,
        between(contextCounts.hour, f.firstHour, f.lastHour),
      ),
    );
}
