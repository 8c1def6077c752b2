// The hourly roll-ups (event_counts, context_counts): what adds stored events to them and takes
// purged or erased ones away, so counts stay exact without counting rows.
import { type SQL, sql } from "drizzle-orm";
import { HOUR } from "../shared/timestamp";
import { ALL_APPS, contextCounts, eventCounts, events } from "./schema";

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
