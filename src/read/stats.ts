// GET /api/stats/counts: events counted per hour or per day (UTC), split into series by category or
// by name, for charts (the explorer's). Read from the hourly roll-ups, never the events (db/stats.ts).
import { Hono } from "hono";
import { numberKnowing } from "../db/applications";
import { type SeriesRow, seriesCounts } from "../db/stats";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { appOf, parseQuery } from "../request/query-string";
import { readSession } from "../request/read-session";
import { ApiError } from "../shared/errors";
import { statsQuery } from "../shared/schemas";
import { formatTimestamp, HOUR, nowMicros } from "../shared/timestamp";

/** Hours per bucket. */
const WIDTH = { hour: 1, day: 24 } as const;
/** The window without timestamp_after: the last day by hour, the last 30 days by day. */
const DEFAULT_BUCKETS = { hour: 24, day: 30 } as const;
/**
 * The longest window: 31 days by hour (744 points, about a chart's width in pixels, and the
 * export's range), a year by day. Rows read grow with the window's hours (see foldSeries).
 */
export const MAX_BUCKETS = { hour: 744, day: 366 } as const;
const DEFAULT_SERIES = 10;

export interface Window {
  /** The first bucket's first hour. */
  firstHour: number;
  buckets: number;
  /** Hours per bucket. */
  width: number;
}

export interface Folded {
  total: number;
  totals: number[];
  /** Largest first (ties by key), at most `limit`. */
  series: { key: string; total: number; counts: number[] }[];
  /** The series past `limit`, summed per bucket; null when there are none. */
  other: number[] | null;
}

/**
 * Hourly rows into buckets: one array per series, and the totals (the '' rows, or the one series
 * when the split's own filter leaves only one).
 */
export function foldSeries(rows: readonly SeriesRow[], w: Window, limit: number, single: string | undefined): Folded {
  const zeros = () => new Array<number>(w.buckets).fill(0);
  const byKey = new Map<string, number[]>();
  for (const r of rows) {
    const i = Math.floor((r.hour - w.firstHour) / w.width);
    if (i < 0 || i >= w.buckets) continue;
    let counts = byKey.get(r.key);
    if (!counts) {
      counts = zeros();
      byKey.set(r.key, counts);
    }
    counts[i]! += r.n;
  }
  const totals = byKey.get(single ?? "") ?? zeros();
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const all = [...byKey]
    .filter(([key]) => key !== "")
    .map(([key, counts]) => ({ key, total: sum(counts), counts }))
    .filter((s) => s.total > 0)
    .sort((a, b) => b.total - a.total || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const rest = all.slice(limit);
  const other = rest.length === 0 ? null : rest.reduce((acc, s) => acc.map((n, i) => n + s.counts[i]!), zeros());
  return { total: sum(totals), totals, series: all.slice(0, limit), other };
}

export const stats = new Hono<AppEnv>().get("/counts", requireKey("read"), readSession, async (c) => {
  const q = parseQuery(statsQuery, c.req.queries());
  const interval = q.interval ?? "hour";
  const by = q.by ?? "category";
  const width = WIDTH[interval];
  if (q.timestamp_after !== undefined && q.timestamp_before !== undefined && q.timestamp_after > q.timestamp_before) {
    throw new ApiError("invalid_query", "invalid query parameter timestamp_after: later than timestamp_before", {
      errors: [{ field: "timestamp_after", message: "timestamp_after must not be later than timestamp_before" }],
    });
  }
  if (q.country !== undefined && q.device !== undefined) {
    throw new ApiError(
      "invalid_query",
      "invalid query parameter device: counts filter by country or by device, not both",
      {
        errors: [
          { field: "device", message: "device cannot be combined with country here (GET /api/event/ takes both)" },
        ],
      },
    );
  }
  const context =
    q.country !== undefined
      ? { dim: "country" as const, value: q.country }
      : q.device !== undefined
        ? { dim: "device" as const, value: q.device }
        : undefined;
  // Whole buckets, since the counts are hourly: the window widens to the start of the bucket
  // holding timestamp_after and the end of the one holding timestamp_before (default: now).
  const bucketOf = (micros: number) => Math.floor(Math.floor(micros / HOUR) / width);
  const last = bucketOf(q.timestamp_before ?? nowMicros());
  const first = q.timestamp_after !== undefined ? bucketOf(q.timestamp_after) : last - DEFAULT_BUCKETS[interval] + 1;
  const buckets = last - first + 1;
  if (buckets > MAX_BUCKETS[interval]) {
    const most = `${MAX_BUCKETS[interval]} ${interval}s`;
    throw new ApiError(
      "invalid_query",
      `invalid query parameter timestamp_after: the window spans ${buckets} ${interval}s, at most ${most}`,
      {
        errors: [
          {
            field: "timestamp_after",
            message: `timestamp_after must be within ${most} of timestamp_before${interval === "hour" ? " (or use interval=day)" : ""}`,
          },
        ],
      },
    );
  }
  const db = c.get("reads")!;
  // A scoped key counts its own application; a key for every application, the one app_id names or all.
  const appId = appOf(c, q.app_id);
  const app =
    c.get("appId") !== undefined ? c.get("appNum") : appId !== undefined ? await numberKnowing(db, appId) : undefined;
  const w = { firstHour: first * width, buckets, width };
  // An application without a number has no counts (never the ALL_APPS rows, which count every application).
  const known = appId === undefined || app !== undefined;
  const single = by === "category" ? q.category : q.name;
  const rows = known
    ? await seriesCounts(db, {
        by,
        category: q.category,
        name: q.name,
        app,
        context,
        firstHour: w.firstHour,
        lastHour: (last + 1) * width - 1,
      })
    : [];
  const folded = foldSeries(rows, w, q.limit ?? DEFAULT_SERIES, single);
  return c.json({
    interval,
    by,
    application: appId ?? null,
    category: q.category ?? null,
    name: q.name ?? null,
    country: q.country ?? null,
    device: q.device ?? null,
    window: { after: formatTimestamp(w.firstHour * HOUR), before: formatTimestamp((last + 1) * width * HOUR), buckets },
    buckets: Array.from({ length: buckets }, (_, i) => formatTimestamp((first + i) * width * HOUR)),
    total: folded.total,
    totals: folded.totals,
    series: folded.series.map((s) => ({ [by]: s.key, total: s.total, counts: s.counts })),
    other: folded.other,
  });
});
