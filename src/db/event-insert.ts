// The consumer's write: a batch of events, their contexts, their counts and error-log rows in one D1 batch.
import { sql } from "drizzle-orm";
import { packBySize, utf8Length } from "../shared/sizes";
import { D1_MAX_PARAMS, type Db } from "./db";
import { contextRollUpWhere, rollUpWhere } from "./roll-ups";
import { contexts, errorLog, events, type NewErrorLogRow, type NewEventRow, rollupMark } from "./schema";

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
    db
      .insert(contexts)
      .select(sql`SELECT NULL, value FROM json_each(${JSON.stringify(group)}) WHERE true`)
      .onConflictDoNothing(),
  );
}

function insertEvents(db: Db, rows: NewContextEventRow[]) {
  const tuples = rows.map((r) =>
    JSON.stringify([
      r.app,
      r.eventId,
      r.sessionId,
      r.category,
      r.name,
      r.data,
      r.timestamp,
      r.receivedAt,
      r.contextBody ?? null,
      r.country ?? null,
      r.device ?? null,
    ]),
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
    ...chunk(errors, Math.floor(D1_MAX_PARAMS / ERROR_COLUMNS)).map((c) =>
      db.insert(errorLog).values(c).onConflictDoNothing(),
    ),
  ];
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
}
