// How many events match: whole hours from the hourly counts (type_counts, context_value_counts,
// summed over the generations), the partial hours at a range's edges counted row by row.
import { and, count, eq, gte, lte, sql } from "drizzle-orm";
import { HOUR } from "../shared/timestamp";
import type { Db } from "./db";
import {
  type EventFilters,
  generationsFor,
  type ReadOptions,
  type Resolved,
  rangesOf,
  rangeTerm,
  resolveFilters,
} from "./event-reads";
import { generationTable, isMissingGeneration } from "./generations";
import { ALL_APPS, contextValueCounts, typeCounts } from "./schema";

/** The matching events counted row by row, in every generation the range meets. */
async function exactCount(db: Db, f: EventFilters, r: Resolved, o: ReadOptions, fresh = false): Promise<number> {
  const queries = (await generationsFor(db, f, o, "desc", fresh, r)).flatMap((gen) => {
    const t = generationTable(gen);
    return rangesOf(gen, f, r).map((range) =>
      db
        .select({ n: count() })
        .from(t)
        .where(and(range.where, rangeTerm(t, f.after, f.before))),
    );
  });
  const [first, ...rest] = queries;
  if (!first) return 0;
  try {
    const results = rest.length === 0 ? [await first] : await db.batch([first, ...rest]);
    return (results as { n: number }[][]).reduce((total, rows) => total + Number(rows[0]?.n ?? 0), 0);
  } catch (err) {
    // A generation dropped meanwhile: count again with the list read afresh.
    if (fresh || !isMissingGeneration(err)) throw err;
    return exactCount(db, f, r, o, true);
  }
}

/**
 * How many events match. A session's events are counted in its index (sessions are small), and
 * so are events filtered by both a country and a device (no count has both). Otherwise whole hours
 * come from the hourly counts and only the partial hours at the edges of a time range are counted
 * row by row: a count over a million events reads a few hundred count rows plus at most two hours
 * of matching events, and stays exact.
 */
export async function countEvents(db: Db, f: EventFilters, o: ReadOptions = {}, resolved?: Resolved): Promise<number> {
  const r = resolved ?? (await resolveFilters(db, f, o.hotDays));
  if ((r.sessions && r.sessions.length === 0) || (r.types && r.types.length === 0)) return 0;
  // Whole hours inside [after, before]: first..last (either open when its bound is absent).
  const first = f.after === undefined ? undefined : Math.ceil(f.after / HOUR);
  const last = f.before === undefined ? undefined : Math.floor((f.before + 1) / HOUR) - 1;
  const both = f.country !== undefined && f.device !== undefined;
  if (f.sessionId !== undefined || both || (first !== undefined && last !== undefined && first > last))
    return exactCount(db, f, r, o);
  const dim =
    f.country !== undefined
      ? { dim: "country", value: f.country }
      : f.device !== undefined
        ? { dim: "device", value: f.device }
        : undefined;
  const rolled = dim
    ? db
        .select({ n: sql<number>`coalesce(sum(${contextValueCounts.n}), 0)` })
        .from(contextValueCounts)
        .where(
          and(
            eq(contextValueCounts.app, f.app ?? ALL_APPS),
            eq(contextValueCounts.dim, dim.dim),
            eq(contextValueCounts.value, dim.value),
            eq(contextValueCounts.category, f.category ?? ""),
            eq(contextValueCounts.name, f.name ?? ""),
            first !== undefined ? gte(contextValueCounts.hour, first) : undefined,
            last !== undefined ? lte(contextValueCounts.hour, last) : undefined,
          ),
        )
    : db
        .select({ n: sql<number>`coalesce(sum(${typeCounts.n}), 0)` })
        .from(typeCounts)
        .where(
          and(
            eq(typeCounts.category, f.category ?? ""),
            eq(typeCounts.name, f.name ?? ""),
            first !== undefined ? gte(typeCounts.hour, first) : undefined,
            last !== undefined ? lte(typeCounts.hour, last) : undefined,
            eq(typeCounts.app, f.app ?? ALL_APPS),
          ),
        );
  const head = first !== undefined && f.after! < first * HOUR ? { ...f, before: first * HOUR - 1 } : undefined;
  const tail = last !== undefined && f.before! >= (last + 1) * HOUR ? { ...f, after: (last + 1) * HOUR } : undefined;
  const [[whole], ...edges] = await Promise.all([
    rolled,
    ...[head, tail].filter((g) => g !== undefined).map((g) => exactCount(db, g, r, o)),
  ]);
  return Number(whole?.n ?? 0) + (edges as number[]).reduce((a, b) => a + b, 0);
}
