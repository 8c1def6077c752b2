// The consumer's write: a batch of events into their generations, the dictionaries their numbers
// come from (types, sessions, contexts), their hourly counts, the batch's arrival record and the
// error-log rows, all in one D1 batch, which D1 runs as one transaction: all of it, or none.
//
// What it writes, per event: its row and three index entries (4 rows). Per batch: the new
// dictionary rows, one upsert per count key, one arrivals row per generation, the generation's and
// the id counter's rows. Ids come from storage_state.next_id, in the batch's order, never twice.
import { eq, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { packBySize, utf8Length } from "../shared/sizes";
import { D1_MAX_PARAMS, type Db } from "./db";
import {
  createGeneration,
  forgetGenerations,
  type Generations,
  generationStatistics,
  generationTable,
  isMissingGeneration,
  readGenerations,
  routeOf,
} from "./generations";
import { countStatements } from "./roll-ups";
import {
  arrivals,
  contexts,
  errorLog,
  eventTypes,
  generationApps,
  generations,
  type NewErrorLogRow,
  type NewEventRow,
  sessions,
  storageState,
} from "./schema";

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

/** An event to store (its context as the JSON text of a contexts row; null or absent: none). */
export type NewContextEventRow = NewEventRow;

/** The id the batch's first event gets: read inside the batch, before the counter moves. */
const nextId = sql`(SELECT next_id FROM ${storageState} WHERE id = 1)`;

/** The dictionaries' new entries, and the newest generation each now has an event in. */
function dictionaryUpserts(db: Db, rows: (NewEventRow & { gen: number })[]) {
  const newest = <K>(keyOf: (r: NewEventRow & { gen: number }) => K | undefined) => {
    const out = new Map<string, { key: K; gen: number }>();
    for (const r of rows) {
      const key = keyOf(r);
      if (key === undefined) continue;
      const id = JSON.stringify(key);
      const seen = out.get(id);
      if (!seen || seen.gen < r.gen) out.set(id, { key, gen: r.gen });
    }
    return [...out.values()];
  };
  const types = newest((r) => [r.category, r.name]).map((t) => [...t.key, t.gen]);
  const sessionKeys = newest((r) => [r.app, r.sessionId]).map((t) => [...t.key, t.gen]);
  const bodies = newest((r) =>
    typeof r.contextBody === "string" ? [r.contextBody, r.country ?? null, r.device ?? null] : undefined,
  ).map((t) => [...t.key, t.gen]);
  const json = (items: unknown[][]) =>
    packBySize(items, (i) => utf8Length(JSON.stringify(i)) + 1, INSERT_JSON_BYTES).map((g) => JSON.stringify(g));
  return [
    // A row that exists keeps its number; its generation moves up only (no write when it does not).
    ...json(types).map((j) =>
      db
        .insert(eventTypes)
        .select(sql`SELECT NULL, value ->> 0, value ->> 1, value ->> 2 FROM json_each(${j}) WHERE true`)
        .onConflictDoUpdate({
          target: [eventTypes.category, eventTypes.name],
          set: { gen: sql`excluded.gen` },
          setWhere: sql`excluded.gen > ${eventTypes.gen}`,
        }),
    ),
    ...json(sessionKeys).map((j) =>
      db
        .insert(sessions)
        .select(sql`SELECT NULL, value ->> 0, value ->> 1, value ->> 2 FROM json_each(${j}) WHERE true`)
        .onConflictDoUpdate({
          target: [sessions.app, sessions.sessionId],
          set: { gen: sql`excluded.gen` },
          setWhere: sql`excluded.gen > ${sessions.gen}`,
        }),
    ),
    ...json(bodies).map((j) =>
      db
        .insert(contexts)
        .select(sql`SELECT NULL, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(${j}) WHERE true`)
        .onConflictDoUpdate({
          target: contexts.body,
          set: { gen: sql`excluded.gen` },
          setWhere: sql`excluded.gen > ${contexts.gen}`,
        }),
    ),
  ];
}

/**
 * One generation's share of the batch: its events (each under its offset in the batch, so its id
 * is next_id + offset), then their counts and arrival record, read back through the rows actually
 * inserted — an event the generation (or another live one) already holds is skipped, takes no id
 * of its own in any row, and is counted nowhere.
 */
function generationStatements(
  db: Db,
  gen: number,
  rows: { row: NewEventRow; offset: number }[],
  g: Generations,
  { base = nextId, withArrivals = true }: { base?: SQL; withArrivals?: boolean } = {},
) {
  const t = generationTable(gen);
  const others = g.live.filter((other) => other !== gen);
  const tuples = rows.map(({ row: r, offset }) =>
    JSON.stringify([
      r.app,
      r.timestamp,
      offset,
      r.category,
      r.name,
      r.sessionId,
      r.eventId.replace(/-/g, ""),
      r.receivedAt - r.timestamp,
      r.data,
      r.contextBody ?? null,
    ]),
  );
  const statements = [];
  for (const group of packBySize(tuples, (s) => utf8Length(s) + 1, INSERT_JSON_BYTES)) {
    const json = `[${group.join(",")}]`;
    // The same event_id in another live generation (sent again with another timestamp): skipped too.
    const elsewhere = others.map(
      (o) =>
        sql` AND NOT EXISTS (SELECT 1 FROM ${generationTable(o)} WHERE app = value ->> 0 AND event_id = unhex(value ->> 6))`,
    );
    statements.push(
      db
        .insert(t)
        .select(
          sql`SELECT value ->> 0, value ->> 1, ${base} + (value ->> 2),
              (SELECT id FROM ${eventTypes} WHERE category = value ->> 3 AND name = value ->> 4),
              (SELECT num FROM ${sessions} WHERE app = value ->> 0 AND session_id = value ->> 5),
              unhex(value ->> 6), value ->> 7, value ->> 8,
              (SELECT id FROM ${contexts} WHERE body = value ->> 9)
            FROM json_each(${json}) WHERE true${sql.join(elsewhere, sql``)}`,
        )
        // The one uniqueness to meet is (event_id, app): a redelivered or resent event is skipped.
        .onConflictDoNothing(),
    );
  }
  // The rows this batch inserted: matched by their keys, with the id this batch gave them.
  const keys = JSON.stringify(rows.map(({ row, offset }) => [row.app, row.timestamp, offset]));
  const inserted = sql`FROM json_each(${keys}) AS k JOIN ${t} AS e
    ON e.app = k.value ->> 0 AND e.timestamp = k.value ->> 1 AND e.id = ${base} + (k.value ->> 2)`;
  // The highest id given (a rebuild's chunk comes newest first, so not always the last row's).
  const highest = Math.max(...rows.map((r) => r.offset));
  statements.push(
    ...countStatements(db, gen, inserted),
    // Where the archive finds them (generation tables have no index by id).
    ...(withArrivals
      ? [
          db.insert(arrivals).select(
            // min and max of the ids themselves: a rebuild's chunk comes newest first.
            sql`SELECT min(e.id), max(e.id),
              json_group_array(json_array(${sql.raw(String(gen))}, e.app, e.timestamp, e.id)) ${inserted} WHERE true HAVING count(*) > 0`,
          ),
        ]
      : []),
    db
      .update(generations)
      .set({ maxId: sql`max(${generations.maxId}, ${base} + ${sql.raw(String(highest))})` })
      .where(eq(generations.gen, gen)),
    db
      .insert(generationApps)
      .values([...new Set(rows.map((r) => r.row.app))].map((app) => ({ gen, app })))
      .onConflictDoNothing(),
  );
  return statements;
}

export interface InsertOptions {
  /** HOT_DAYS, from which the generations' span is set the first time (generations.ts). */
  hotDays?: number;
  /**
   * Rows that keep the ids they have (`ids`, one per row), and whether they still need the archive
   * (arrival rows): the rebuild of the pre-0011 table moves old events in with their own ids.
   */
  ids?: number[];
  toArchive?: boolean;
}

/**
 * Inserts events (an event_id its application already stored is skipped), their counts and
 * arrival records, and error-log rows (an entry already logged is skipped) in one D1 batch.
 */
export async function insertAll(
  db: Db,
  rows: NewEventRow[],
  errors: NewErrorLogRow[] = [],
  options: InsertOptions = {},
): Promise<void> {
  try {
    await insertOnce(db, rows, errors, options, false);
  } catch (err) {
    // A generation dropped by retention between the read of the list and the batch (which then
    // wrote nothing): again, creating every generation the events go to where it is missing.
    if (!isMissingGeneration(err)) throw err;
    forgetGenerations();
    await insertOnce(db, rows, errors, options, true);
  }
}

async function insertOnce(
  db: Db,
  rows: NewEventRow[],
  errors: NewErrorLogRow[],
  { hotDays = 30, ids, toArchive = true }: InsertOptions,
  createAll: boolean,
): Promise<void> {
  // One copy of each (event_id, app): the first, as the table's uniqueness would keep it.
  const seen = new Set<string>();
  const idOf = new Map(ids ? rows.map((r, i) => [r, ids[i]!]) : []);
  const unique = rows.filter((r) => {
    const key = `${r.app}:${r.eventId.toLowerCase()}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const statements: BatchItem<"sqlite">[] = [];
  let created = false;
  if (unique.length > 0) {
    const g = await readGenerations(db, hotDays, { fresh: true });
    const routed = unique.map((row) => ({ ...row, gen: routeOf(row.timestamp, g), keptId: idOf.get(row) }));
    // Offsets grouped by generation, so each generation's ids are one range (the archive's watermark needs it).
    const byGen = new Map<number, { row: NewEventRow; offset: number }[]>();
    let offset = 0;
    for (const row of [...routed].sort((a, b) => b.gen - a.gen)) {
      const group = byGen.get(row.gen) ?? [];
      group.push({ row, offset: row.keptId ?? offset++ });
      byGen.set(row.gen, group);
    }
    const live = { ...g, live: [...new Set([...g.live, ...byGen.keys()])].sort((a, b) => b - a) };
    created = live.live.length > g.live.length;
    statements.push(
      db.insert(storageState).values({ id: 1 }).onConflictDoNothing(),
      ...dictionaryUpserts(db, routed),
      // A generation just read as live has its table: only a new one is created (its table, indexes,
      // row and statistics). One dropped since the read fails the batch, which goes again (below).
      ...[...byGen.keys()]
        .filter((gen) => createAll || !g.live.includes(gen))
        .flatMap((gen) => [...createGeneration(gen), ...generationStatistics(gen)].map((s) => db.run(s))),
      ...[...byGen].flatMap(([gen, group]) =>
        generationStatements(db, gen, group, live, ids ? { base: sql`0`, withArrivals: toArchive } : {}),
      ),
      ...(ids
        ? []
        : [
            db
              .update(storageState)
              .set({ nextId: sql`${storageState.nextId} + ${offset}` })
              .where(eq(storageState.id, 1)),
          ]),
    );
  }
  // An entry whose dedup key is already logged (a redelivered message) is skipped.
  for (const c of chunk(errors, Math.floor(D1_MAX_PARAMS / ERROR_COLUMNS)))
    statements.push(db.insert(errorLog).values(c).onConflictDoNothing());
  const [first, ...rest] = statements;
  if (first) await db.batch([first, ...rest]);
  // A generation this batch created is news to the isolate's readers.
  if (created) forgetGenerations();
}
