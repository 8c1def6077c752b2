// Reading events: the filters every GET route takes, each served by index ranges of the
// generations that cover the time range (generations.ts), merged in order.
//
// A generation's table is clustered by (app, timestamp, id), with indexes (app, type, timestamp)
// and (session, timestamp). So each filter shape reads index ranges that are already in order:
//   no filter, or country/device ... one range per application of the table's own key;
//   session ........................ one range per session number (the id in each application);
//   category, name, both ........... one range per (application, type) pair the filter names.
// Each range reads its share of the page, and more only while it may hold more of it (readGeneration).
// Country and device have no index: their rows are read in the time order of the application's
// range and kept when their context matches (rows read ≈ page ÷ that value's share of the events).
// Generations are read newest first (oldest first in ascending order) until the page is full.
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { BoundedCache } from "../shared/bounded-cache";
import type { Db } from "./db";
import { valuesOf } from "./dictionaries";
import {
  type Generations,
  type GenerationTable,
  generationReads,
  generationsIn,
  generationsOf,
  generationTable,
  genOf,
  isMissingGeneration,
  readGenerations,
} from "./generations";
import { firstLimits, rememberShape } from "./page-shapes";
import { contexts, type EventRow, eventTypes, generationApps, sessions, uuidOfHex } from "./schema";

/**
 * An integer written into the SQL text rather than bound: the numbers of an index range (an
 * application, a type, a session's number, a timestamp, an id, a limit) are the database's own or
 * parsed integers, never text from a client, and a statement that merges 25 ranges would need more
 * than D1's 100 bound parameters.
 */
export function int(n: number): SQL {
  // Whole numbers only; a bound far outside the stored range (a year-1 filter, a forged cursor) is
  // written as JavaScript prints it, which SQLite reads as the same number.
  if (!Number.isInteger(n)) throw new TypeError(`not an integer: ${n}`);
  return sql.raw(String(n));
}

export type StoredEvent = EventRow & { contextBody: string | null };

export interface EventFilters {
  sessionId?: string;
  category?: string;
  name?: string;
  /** Context values (contexts.country, contexts.device). */
  country?: string;
  device?: string;
  /** One application's number: a read scoped to it. Without it, every application's events. */
  app?: number;
  /** Inclusive bounds, microseconds. */
  after?: number;
  before?: number;
}

/**
 * A position in the (timestamp, id) order: the first row of the page to read, which the
 * previous page fetched as its one row of lookahead. Reading from it inclusive makes a page
 * read exactly limit + 1 rows (its own and the next page's first).
 */
export interface Position {
  timestamp: number;
  id: number;
  /**
   * False when the position is the first row of its timestamp in the walk (the previous page
   * ended on another timestamp): the page is then one range from that timestamp, with no id
   * condition. True or unknown: rows of the same timestamp came before it, so the page seeks to its id.
   */
  tie?: boolean;
}

export interface Page {
  limit: number;
  offset?: number;
  /** A cursor position: the page starts at this row, inclusive. */
  after?: Position;
  direction?: "asc" | "desc";
}

/** What a read needs to know beside the filters: HOT_DAYS sets the generations' span before the first write. */
export interface ReadOptions {
  hotDays?: number;
}

/** A generation's rows as stored: numbers for the type, session and context. */
export function rawColumns(t: GenerationTable) {
  return {
    id: t.id,
    app: t.app,
    timestamp: t.timestamp,
    type: t.type,
    session: t.session,
    eventId: sql<string>`hex(${t.eventId})`.mapWith(uuidOfHex).as("event_id"),
    received: t.received,
    data: t.data,
    context: t.context,
  };
}

export type RawEvent = {
  id: number;
  app: number;
  timestamp: number;
  type: number;
  session: number;
  eventId: string;
  received: number;
  data: string;
  context: number | null;
};

/**
 * A select of one generation's rows. The planner finds the b-tree each range is meant for from
 * the statistics every generation gets (generations.ts generationStatistics).
 */
export function selectRaw(db: Db, gen: number) {
  const t = generationTable(gen);
  return db.select(rawColumns(t)).from(t);
}

/** Stored events from rows as stored: each number's value from the dictionaries (dictionaries.ts). */
export async function hydrate(db: Db, rows: RawEvent[]): Promise<StoredEvent[]> {
  const values = await valuesOf(db, rows);
  return rows.map((r, i) => ({
    id: r.id,
    app: r.app,
    eventId: r.eventId,
    sessionId: values[i]!.sessionId,
    category: values[i]!.category,
    name: values[i]!.name,
    data: r.data,
    timestamp: r.timestamp,
    receivedAt: r.timestamp + r.received,
    contextBody: values[i]!.contextBody,
  }));
}

/** The numbers a filter names, looked up once per read: session numbers, type ids, applications. */
export interface Resolved {
  /** The applications to read in each generation: the one the filter names, or those the generation holds. */
  apps: (gen: number) => number[];
  /** What the lookups answered, as text: two answers are the same when these are. */
  answer: string;
  /** The live generations, read with the lookups. */
  generations: Generations;
  /** Set when the filter names a session: its number in each application that has it. */
  sessions?: { num: number; app: number }[];
  /** Set when the filter names a category or a name: the types it covers. */
  types?: number[];
}

/**
 * The numbers a filter names and the live generations, in one D1 round trip (one batch of the
 * lookups it needs and the generations' list). `hotDays` sets the span before the first write.
 */
export async function resolveFilters(db: Db, f: EventFilters, hotDays = 30): Promise<Resolved> {
  const wantTypes = f.category !== undefined || f.name !== undefined;
  const lookups = [
    wantTypes
      ? db
          .select({ id: eventTypes.id })
          .from(eventTypes)
          .where(
            and(
              f.category !== undefined ? eq(eventTypes.category, f.category) : undefined,
              f.name !== undefined ? eq(eventTypes.name, f.name) : undefined,
            ),
          )
      : undefined,
    f.sessionId !== undefined
      ? db
          .select({ num: sessions.num, app: sessions.app })
          .from(sessions)
          .where(
            and(
              eq(sessions.sessionId, f.sessionId),
              // Across applications, one seek of (app, session_id) per application with events
              // in D1, not a scan of every session.
              f.app !== undefined
                ? eq(sessions.app, f.app)
                : sql`${sessions.app} IN (SELECT DISTINCT ${generationApps.app} FROM ${generationApps})`,
            ),
          )
      : undefined,
    f.app === undefined && f.sessionId === undefined
      ? db.select({ gen: generationApps.gen, app: generationApps.app }).from(generationApps)
      : undefined,
  ];
  const asked = lookups.filter((q) => q !== undefined) as unknown as BatchItem<"sqlite">[];
  const answers = (await db.batch([...generationReads(db), ...asked] as unknown as [
    BatchItem<"sqlite">,
  ])) as unknown[][];
  const generations = generationsOf(answers[0] as { span: number | null }[], answers[1] as { gen: number }[], hotDays);
  let next = 2;
  const [typeRows, sessionRows, appRows] = lookups.map((q) => (q === undefined ? undefined : answers[next++])) as [
    { id: number }[] | undefined,
    { num: number; app: number }[] | undefined,
    { gen: number; app: number }[] | undefined,
  ];
  const byGen = new Map<number, number[]>();
  for (const r of appRows ?? []) byGen.set(r.gen, [...(byGen.get(r.gen) ?? []), r.app]);
  const apps = (gen: number) => (f.app !== undefined ? [f.app] : (byGen.get(gen) ?? []));
  const types = typeRows?.map((r) => r.id);
  const answer = JSON.stringify([types, sessionRows, [...byGen], generations]);
  return { apps, types, sessions: sessionRows, answer, generations };
}

/** The isolate's last answer for each filter (what resolveFilters found), for reads that guess. */
const lastAnswers = new BoundedCache<Resolved>(2_000);
const ANSWER_MS = 10 * 60_000;

/**
 * `read` with the filter's numbers, in one round trip where the isolate has read this filter
 * before: the read starts at once with the last answer while the lookups run beside it, and is kept
 * when the lookups answer the same (a new type in the category, a session in another application or
 * a new generation's applications make them differ: the read then goes again with the new answer).
 * What a request returns is as fresh as if it had waited for the lookups.
 */
export async function withFilters<T>(
  db: Db,
  f: EventFilters,
  read: (r: Resolved) => Promise<T>,
  o: ReadOptions = {},
): Promise<T> {
  const key = JSON.stringify([f.category, f.name, f.sessionId, f.app]);
  const guess = lastAnswers.get(key);
  const fresh = resolveFilters(db, f, o.hotDays);
  if (guess === undefined) {
    const r = await fresh;
    lastAnswers.set(key, r, ANSWER_MS);
    return read(r);
  }
  const speculative = read(guess).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  const r = await fresh;
  lastAnswers.set(key, r, ANSWER_MS);
  const done = await speculative;
  if (r.answer === guess.answer && "value" in done) return done.value;
  return read(r);
}

/**
 * The context condition: events whose context has the country (or device), each row's contexts row
 * looked up by its key (one row read per event scanned). An `IN (SELECT … FROM contexts)` would read
 * every contexts row with the value on each statement, however few events the page needs.
 */
function contextTerm(t: GenerationTable, f: EventFilters): SQL | undefined {
  if (f.country === undefined && f.device === undefined) return undefined;
  const value = (column: typeof contexts.country | typeof contexts.device, v: string) =>
    sql`(SELECT ${column} FROM ${contexts} WHERE ${contexts.id} = ${t.context}) = ${v}`;
  return and(
    f.country !== undefined ? value(contexts.country, f.country) : undefined,
    f.device !== undefined ? value(contexts.device, f.device) : undefined,
  );
}

/**
 * The index ranges of one generation that together hold the matching events, each an equality
 * prefix of an index whose next column is the timestamp: merged, they are the events in order.
 * Equality on a column outside the range's index is written `+col = ?`, which keeps SQLite on
 * the range's own index (SPEC §4) instead of whichever it guesses without statistics.
 */
export function rangesOf(gen: number, f: EventFilters, r: Resolved): { where: SQL; key: string }[] {
  const t = generationTable(gen);
  const ctx = contextTerm(t, f);
  const typeTerm = (types: number[]) =>
    types.length === 1
      ? sql`+${t.type} = ${int(types[0]!)}`
      : sql`+${t.type} IN (${sql.join(types.map(int), sql`, `)})`;
  if (r.sessions !== undefined)
    return r.sessions.map((s) => ({
      where: and(
        sql`${t.session} = ${int(s.num)}`,
        sql`+${t.app} = ${int(s.app)}`,
        r.types ? typeTerm(r.types) : undefined,
        ctx,
      )!,
      key: `s${s.num}:${s.app}`,
    }));
  if (r.types !== undefined)
    return r.apps(gen).flatMap((app) =>
      r.types!.map((type) => ({
        where: and(sql`${t.app} = ${int(app)}`, sql`${t.type} = ${int(type)}`, ctx)!,
        key: `t${app}:${type}`,
      })),
    );
  return r.apps(gen).map((app) => ({ where: and(sql`${t.app} = ${int(app)}`, ctx)!, key: `a${app}` }));
}

/** The timestamp range as one index range: both bounds as one BETWEEN (SQLite seeks on only one of two separate bounds). */
export function rangeTerm(t: GenerationTable, after: number | undefined, before: number | undefined): SQL | undefined {
  if (after !== undefined && before !== undefined) return sql`${t.timestamp} BETWEEN ${int(after)} AND ${int(before)}`;
  if (after !== undefined) return sql`${t.timestamp} >= ${int(after)}`;
  if (before !== undefined) return sql`${t.timestamp} <= ${int(before)}`;
  return undefined;
}

/**
 * The conditions of the rows from a position on, for one range. From a clean position (the first
 * of its timestamp in the walk), one range from its timestamp. Otherwise two that each seek: the
 * rest of the position's own timestamp from its id (every index ends in timestamp and id), then
 * the timestamps past it. A row-value condition `(timestamp, id) <= (T, P)` cannot seek on the id.
 */
function armsOf(t: GenerationTable, range: SQL, f: EventFilters, p: Position | undefined, dir: "asc" | "desc"): SQL[] {
  if (p === undefined) return [and(range, rangeTerm(t, f.after, f.before))!];
  const clamp = (bound: number) =>
    dir === "desc"
      ? rangeTerm(t, f.after, f.before === undefined ? bound : Math.min(f.before, bound))
      : rangeTerm(t, f.after === undefined ? bound : Math.max(f.after, bound), f.before);
  if (p.tie === false) return [and(range, clamp(p.timestamp))!];
  const inRange =
    (f.after === undefined || p.timestamp >= f.after) && (f.before === undefined || p.timestamp <= f.before);
  const tie = inRange
    ? and(
        range,
        sql`${t.timestamp} = ${int(p.timestamp)}`,
        dir === "desc" ? sql`${t.id} <= ${int(p.id)}` : sql`${t.id} >= ${int(p.id)}`,
      )
    : undefined;
  const beyond = and(range, clamp(dir === "desc" ? p.timestamp - 1 : p.timestamp + 1))!;
  return tie ? [tie, beyond] : [beyond];
}

const before = (dir: "asc" | "desc") => (a: RawEvent, b: RawEvent) =>
  dir === "desc" ? b.timestamp - a.timestamp || b.id - a.id : a.timestamp - b.timestamp || a.id - b.id;

/** The row after `row` in the walk's direction, as a position: where a range's next read starts. */
const pastRow = (row: RawEvent, dir: "asc" | "desc"): Position => ({
  timestamp: row.timestamp,
  id: dir === "desc" ? row.id - 1 : row.id + 1,
  tie: true,
});

/**
 * The first `n` matching rows of one generation, in order: a lazy merge of its ranges. Each range
 * first reads its share of the page (n ÷ k, two standard deviations more, and one; or about what it
 * held of this filter's last page here); a range whose last row read comes before the page's n-th
 * row so far (it may hold more of the page) is read once more, for what the page can still take of
 * it. A range never reads more than n rows, so a read stays within k × (n + 1), and where the page
 * is spread over the ranges it reads about n + 2k rows.
 */
async function readGeneration(
  db: Db,
  gen: number,
  f: EventFilters,
  r: Resolved,
  n: number,
  p: Position | undefined,
  dir: "asc" | "desc",
): Promise<RawEvent[]> {
  const ranges = rangesOf(gen, f, r).map((range) => ({ ...range, rows: [] as RawEvent[], from: p, more: true }));
  if (ranges.length === 0) return [];
  const cmp = before(dir);
  // A range's share of the page, two standard deviations more (a page spread evenly over k ranges
  // holds about n/k ± √(n/k) of each) and one to tell whether it holds more: one round, most often.
  const share = n / ranges.length;
  const per = ranges.length === 1 ? n : Math.min(n, Math.ceil(share + 2 * Math.sqrt(share)) + 1);
  // A range that held more than its share of this filter's last page here starts with about as
  // many as it held then (page-shapes.ts).
  const shapeKey = `${gen}:${dir}:${n}:${ranges.map((range) => range.key).join(",")}`;
  const limits = ranges.length === 1 ? [n] : firstLimits(shapeKey, ranges, per, n);
  let reads = ranges.map((range, i) => ({ range, limit: limits[i]! }));
  let merged: RawEvent[] = [];
  // A bound context value is a parameter per range and arm: fewer ranges per statement then.
  const perStatement = f.country !== undefined || f.device !== undefined ? 10 : RANGES_PER_STATEMENT;
  while (reads.length > 0) {
    const statements = [];
    for (let i = 0; i < reads.length; i += perStatement)
      statements.push(
        db.all<RawRow>(
          mergedRanges(
            reads
              .slice(i, i + perStatement)
              .map((read, j) => rangeRead(gen, read.range.where, f, read.range.from, read.limit, dir, i + j)),
          ),
        ),
      );
    const [first, ...rest] = statements as unknown as BatchItem<"sqlite">[];
    const results = (rest.length === 0 ? [await first!] : await db.batch([first!, ...rest])) as unknown as RawRow[][];
    const got = reads.map(() => [] as RawEvent[]);
    for (const result of results) for (const row of result) got[row.r]!.push(rawEvent(row));
    reads.forEach(({ range, limit }, i) => {
      const rows = got[i]!.sort(cmp);
      range.rows.push(...rows);
      range.more = rows.length === limit && range.rows.length < n;
      if (rows.length > 0) range.from = pastRow(rows[rows.length - 1]!, dir);
    });
    merged = ranges.length === 1 ? ranges[0]!.rows : ranges.flatMap((range) => range.rows).sort(cmp);
    const nth = merged.length >= n ? merged[n - 1] : undefined;
    // Only a range whose last row read comes before the n-th row may hold more of the page, and at
    // most n − s more of it, s being the rows read so far that come at or before its last one: a
    // read of that many ends its part of the page, so a generation takes two rounds at most.
    const pending = ranges.filter(
      (range) => range.more && (nth === undefined || cmp(range.rows[range.rows.length - 1]!, nth) < 0),
    );
    const at = new Map(pending.length > 0 ? merged.map((row, i) => [row, i + 1]) : []);
    reads = pending.map((range) => ({ range, limit: n - at.get(range.rows[range.rows.length - 1]!)! }));
  }
  const page = merged.slice(0, n);
  if (ranges.length > 1) rememberShape(shapeKey, ranges, page, per);
  return page;
}

/**
 * Index ranges one statement reads: D1 allows 5 terms in a compound SELECT, so 5 groups of 5
 * ranges, each group a compound in a subquery of the outer one. One statement for 25 ranges
 * costs D1 and the Worker less than 25 statements of one range each.
 */
const RANGES_PER_STATEMENT = 25;
const COMPOUND_TERMS = 5;

/** A range's rows as one statement returns them: the columns, and `r`, which range they are. */
type RawRow = Omit<RawEvent, "eventId"> & { event_id: string; r: number };

const rawEvent = (row: RawRow): RawEvent => ({
  id: row.id,
  app: row.app,
  timestamp: row.timestamp,
  type: row.type,
  session: row.session,
  eventId: uuidOfHex(row.event_id),
  received: row.received,
  data: row.data,
  context: row.context,
});

/** Reads of several ranges as one statement: compounds of at most 5 terms, nested. */
function mergedRanges(reads: SQL[]): SQL {
  if (reads.length <= COMPOUND_TERMS) return sql.join(reads, sql` UNION ALL `);
  const groups: SQL[] = [];
  for (let i = 0; i < reads.length; i += COMPOUND_TERMS)
    groups.push(sql`SELECT * FROM (${mergedRanges(reads.slice(i, i + COMPOUND_TERMS))})`);
  return mergedRanges(groups);
}

/**
 * One range's next `m` rows from a position, in order, tagged with its index `i`: a term of a
 * compound SELECT. From a position inside a run of equal timestamps, two arms that each seek
 * (armsOf), run in turn by UNION ALL, so when the position's own timestamp fills the page the
 * second never starts. (A compound ORDER BY would merge them and read more.)
 */
function rangeRead(
  gen: number,
  where: SQL,
  f: EventFilters,
  from: Position | undefined,
  m: number,
  dir: "asc" | "desc",
  i: number,
): SQL {
  const t = generationTable(gen);
  const order = sql.raw(dir === "desc" ? "DESC" : "ASC");
  const arm = (w: SQL) =>
    sql`SELECT ${t.app} AS app, ${t.timestamp} AS timestamp, ${t.id} AS id, ${t.type} AS type,
      ${t.session} AS session, hex(${t.eventId}) AS event_id, ${t.received} AS received, ${t.data} AS data, ${t.context} AS context
      FROM ${t} WHERE ${w} ORDER BY ${t.timestamp} ${order}, ${t.id} ${order} LIMIT ${int(m)}`;
  const [first, beyond] = armsOf(t, where, f, from, dir).map(arm);
  const rows =
    beyond === undefined ? first! : sql`SELECT * FROM (${first}) UNION ALL SELECT * FROM (${beyond}) LIMIT ${int(m)}`;
  return sql`SELECT *, ${int(i)} AS r FROM (${rows})`;
}

/** The generations a read covers, newest first (oldest first for an ascending read). */
export async function generationsFor(
  db: Db,
  f: EventFilters,
  o: ReadOptions,
  dir: "asc" | "desc",
  fresh = false,
  r?: Resolved,
) {
  // The list read with the filter's lookups is this request's own; else the isolate's.
  let g: Generations =
    !fresh && r ? r.generations : await readGenerations(db, o.hotDays ?? 30, { fresh, readOnly: true });
  // A generation the isolate's list does not have yet (begun since it was read): read it again.
  if (!fresh && !r && !g.live.includes(genOf(Date.now() * 1000, g.span)))
    g = await readGenerations(db, o.hotDays ?? 30, { fresh: true, readOnly: true });
  const gens = generationsIn(g, f.after, f.before);
  return dir === "desc" ? gens : [...gens].reverse();
}

/**
 * One page of events, newest first (or oldest first with direction "asc"), ties broken by id.
 * Offset pages read offset + limit rows of the generations they pass, as the original's did.
 */
export async function listEvents(
  db: Db,
  f: EventFilters,
  page: Page,
  o: ReadOptions = {},
  resolved?: Resolved,
): Promise<StoredEvent[]> {
  const dir = page.direction ?? "desc";
  const r = resolved ?? (await resolveFilters(db, f, o.hotDays));
  if ((r.sessions && r.sessions.length === 0) || (r.types && r.types.length === 0)) return [];
  for (let attempt = 0; ; attempt++) {
    try {
      let skip = page.offset ?? 0;
      const out: RawEvent[] = [];
      // From a position, the generations wholly past it in the walk's direction hold nothing for the page.
      const p = page.after;
      const bounds: EventFilters =
        p === undefined
          ? f
          : dir === "desc"
            ? { ...f, before: Math.min(f.before ?? p.timestamp, p.timestamp) }
            : { ...f, after: Math.max(f.after ?? p.timestamp, p.timestamp) };
      for (const gen of await generationsFor(db, bounds, o, dir, attempt > 0, r)) {
        const want = skip + page.limit - out.length;
        const rows = await readGeneration(db, gen, f, r, want, page.after, dir);
        const kept = rows.slice(Math.min(skip, rows.length));
        skip = Math.max(0, skip - rows.length);
        out.push(...kept);
        if (out.length >= page.limit) break;
      }
      return hydrate(db, out.slice(0, page.limit));
    } catch (err) {
      // A generation dropped after the list was read: read the list again, once.
      if (attempt > 0 || !isMissingGeneration(err)) throw err;
    }
  }
}

/** Each stored event's data size in bytes, by id, for these keys ([gen, app, timestamp, id]): those D1 still holds. */
export async function dataBytesByKeys(db: Db, keys: [number, number, number, number][]): Promise<Map<number, number>> {
  const byGen = new Map<number, [number, number, number][]>();
  for (const [gen, app, timestamp, id] of keys) byGen.set(gen, [...(byGen.get(gen) ?? []), [app, timestamp, id]]);
  const out = new Map<number, number>();
  for (const [gen, list] of byGen) {
    const t = generationTable(gen);
    for (let i = 0; i < list.length; i += 500) {
      const json = JSON.stringify(list.slice(i, i + 500));
      try {
        const rows = await db
          .select({ id: t.id, bytes: sql<number>`length(CAST(${t.data} AS BLOB))` })
          .from(t)
          .where(
            sql`(${t.app}, ${t.timestamp}, ${t.id}) IN (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(${json}))`,
          );
        for (const r of rows) out.set(r.id, r.bytes);
      } catch (err) {
        if (!isMissingGeneration(err)) throw err;
      }
    }
  }
  return out;
}

/** The stored events with these keys ([gen, app, timestamp, id]), in id order: what the archive and the export read. */
export async function eventsByKeys(db: Db, keys: [number, number, number, number][]): Promise<StoredEvent[]> {
  const byGen = new Map<number, [number, number, number][]>();
  for (const [gen, app, timestamp, id] of keys) byGen.set(gen, [...(byGen.get(gen) ?? []), [app, timestamp, id]]);
  const out: RawEvent[] = [];
  for (const [gen, list] of byGen) {
    const t = generationTable(gen);
    for (let i = 0; i < list.length; i += 500) {
      const json = JSON.stringify(list.slice(i, i + 500));
      try {
        out.push(
          ...(await selectRaw(db, gen).where(
            sql`(${t.app}, ${t.timestamp}, ${t.id}) IN (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(${json}))`,
          )),
        );
      } catch (err) {
        // The generation is gone (dropped once archived): its events are no longer in D1.
        if (!isMissingGeneration(err)) throw err;
      }
    }
  }
  return hydrate(
    db,
    out.sort((a, b) => a.id - b.id),
  );
}

/** Whether a stored event matches the filters (for rows read by key rather than by range). */
export function matches(e: StoredEvent, f: EventFilters): boolean {
  const ctx = e.contextBody ? (JSON.parse(e.contextBody) as { country?: string; device?: string }) : {};
  return (
    (f.sessionId === undefined || e.sessionId === f.sessionId) &&
    (f.category === undefined || e.category === f.category) &&
    (f.name === undefined || e.name === f.name) &&
    (f.country === undefined || ctx.country === f.country) &&
    (f.device === undefined || ctx.device === f.device) &&
    (f.app === undefined || e.app === f.app) &&
    (f.after === undefined || e.timestamp >= f.after) &&
    (f.before === undefined || e.timestamp <= f.before)
  );
}

/**
 * The events stored under an event id: for one application (its number), at most one row; across
 * applications, at most two (one event id may be stored by several applications: two tell the
 * caller it must choose). One seek of each live generation's (event_id, app) index.
 */
export async function findByEventId(
  db: Db,
  eventId: string,
  app: number | undefined,
  o: ReadOptions = {},
): Promise<StoredEvent[]> {
  const hex = eventId.replace(/-/g, "");
  for (let attempt = 0; ; attempt++) {
    try {
      const queries = (await generationsFor(db, {}, o, "desc", attempt > 0)).map((gen) => {
        const t = generationTable(gen);
        // The index is (event_id, app): one seek, by the id alone for a key that reads every application.
        return selectRaw(db, gen)
          .where(and(sql`${t.eventId} = unhex(${hex})`, app !== undefined ? eq(t.app, app) : undefined))
          .limit(2);
      });
      const [first, ...rest] = queries;
      if (!first) return [];
      const results = rest.length === 0 ? [await first] : await db.batch([first, ...rest]);
      return hydrate(db, (results as RawEvent[][]).flat().slice(0, app !== undefined ? 1 : 2));
    } catch (err) {
      if (attempt > 0 || !isMissingGeneration(err)) throw err;
    }
  }
}
