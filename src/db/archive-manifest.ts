// The archive manifest (archive_objects) and the archive's state row (archive_state): what is in R2,
// what is being written, and the versions that let a reader see one consistent set of live objects
// while the maintenance adds, compacts and rewrites objects. Every change to the live set happens in
// one D1 batch with the version bump, so a reader that noted version V sees exactly the objects live
// at V (live_from <= V < live_until) for as long as their rows are kept.
import { and, asc, eq, gt, gte, inArray, isNull, lte, or, type SQL, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "./db";
import { type ArchiveObjectRow, archiveObjects, archiveState, storageState } from "./schema";

export interface ArchiveState {
  version: number;
  forgottenVersion: number;
  pendingAfter: number | null;
  pendingThrough: number | null;
  legacyThrough: number;
  legacyOpenThrough: number;
}

/**
 * The state row, made on first use: the older archive (gzip NDJSON) ends at the watermark of that
 * moment, and its still-growing block at the highest id it had written (storage_state).
 */
export async function readArchiveState(db: Db): Promise<ArchiveState> {
  await db.run(sql`INSERT OR IGNORE INTO ${archiveState} (id, version, legacy_through, legacy_open_through)
    SELECT 1, 0, coalesce((SELECT archived_through FROM ${storageState} WHERE id = 1), 0),
      coalesce((SELECT archived_max_id FROM ${storageState} WHERE id = 1), 0)`);
  const [row] = await db.select().from(archiveState).where(eq(archiveState.id, 1));
  return row!;
}

/** The manifest version as a subquery, for statements batched with a read of it. */
export const versionNow = sql<number>`coalesce((SELECT version FROM ${archiveState} WHERE id = 1), 0)`;
/** Bumps the version: first in every batch that changes the live set (the rest read the new one). */
const bump = (db: Db) =>
  db
    .update(archiveState)
    .set({ version: sql`${archiveState.version} + 1` })
    .where(eq(archiveState.id, 1));

/** An object about to be written: its key, partition, id range and what its rows hold. */
export interface PlannedObject {
  key: string;
  app: string;
  date: string;
  firstId: number;
  lastId: number;
  events: number;
  textBytes: number;
  minTimestamp: number;
  maxTimestamp: number;
}

/** An object as written: its size too. */
export type WrittenObject = PlannedObject & { bytes: number };

/** One D1 batch (one transaction) of statements built here. */
export const batch = (db: Db, items: BatchItem<"sqlite">[]) =>
  db.batch(items as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]);

/** Rows per INSERT: each binds every column (17), under D1's 100 per statement. */
const INSERT_ROWS = 5;

export function insertPending(db: Db, objects: PlannedObject[], origin: ArchiveObjectRow["origin"], now: number) {
  const out = [];
  for (let i = 0; i < objects.length; i += INSERT_ROWS) {
    out.push(
      db
        .insert(archiveObjects)
        .values(
          objects.slice(i, i + INSERT_ROWS).map((o) => ({ ...o, origin, state: "pending" as const, createdAt: now })),
        )
        .onConflictDoNothing(),
    );
  }
  return out;
}

/**
 * Records the id range (afterId, throughId] and the objects it will write, before any is written,
 * in one transaction. A no-op when another range is already recorded.
 */
export async function recordRange(
  db: Db,
  { afterId, throughId, objects, now }: { afterId: number; throughId: number; objects: PlannedObject[]; now: number },
): Promise<void> {
  await db.batch([
    db
      .update(archiveState)
      .set({ pendingAfter: afterId, pendingThrough: throughId })
      .where(and(eq(archiveState.id, 1), isNull(archiveState.pendingThrough))),
    ...insertPending(db, objects, "range", now),
  ]);
}

/** The recorded range's objects (state pending, origin range), in key order. */
export function pendingRangeObjects(db: Db): Promise<ArchiveObjectRow[]> {
  return db
    .select()
    .from(archiveObjects)
    .where(and(eq(archiveObjects.state, "pending"), eq(archiveObjects.origin, "range")))
    .orderBy(asc(archiveObjects.key));
}

/** Marks written objects live at the new version (their sizes and contents as written). */
function goLive(db: Db, o: WrittenObject) {
  return db
    .update(archiveObjects)
    .set({
      state: "live",
      liveFrom: versionNow,
      bytes: o.bytes,
      events: o.events,
      textBytes: o.textBytes,
      minTimestamp: o.minTimestamp,
      maxTimestamp: o.maxTimestamp,
    })
    .where(and(eq(archiveObjects.key, o.key), eq(archiveObjects.state, "pending")));
}

/**
 * The recorded range is in R2: its written objects go live, those left without rows (every row
 * erased since it was recorded) are dropped, the range is cleared and the watermark moves to its
 * end, in one transaction.
 */
export async function commitRange(
  db: Db,
  {
    throughId,
    written,
    dropped,
    maxId,
    now,
  }: { throughId: number; written: WrittenObject[]; dropped: string[]; maxId: number; now: number },
): Promise<void> {
  await db.batch([
    bump(db),
    ...written.map((o) => goLive(db, o)),
    ...(dropped.length > 0
      ? [
          db
            .delete(archiveObjects)
            .where(and(inArray(archiveObjects.key, dropped), eq(archiveObjects.state, "pending"))),
        ]
      : []),
    db.update(archiveState).set({ pendingAfter: null, pendingThrough: null }).where(eq(archiveState.id, 1)),
    db
      .update(storageState)
      .set({
        archivedThrough: sql`max(${storageState.archivedThrough}, ${throughId})`,
        archivedMaxId: sql`max(${storageState.archivedMaxId}, ${maxId})`,
        archivedAt: now,
      })
      .where(eq(storageState.id, 1)),
  ]);
}

/** Which objects a read wants: their partitions' applications and dates, their time span, their ids. */
export interface ObjectScope {
  /** Partition application values; undefined: every application. */
  apps?: string[];
  /** Inclusive YYYY-MM-DD bounds of the partitions' dates. */
  fromDate?: string;
  toDate?: string;
  /** Inclusive bounds the objects' time spans must meet (microseconds). */
  after?: number;
  before?: number;
  /** Objects whose id range meets (idsAfter, idsThrough]. */
  idsAfter?: number;
  idsThrough?: number | SQL<number>;
}

function scopeTerms(s: ObjectScope): (SQL | undefined)[] {
  return [
    s.apps !== undefined ? inArray(archiveObjects.app, s.apps) : undefined,
    s.fromDate !== undefined ? gte(archiveObjects.date, s.fromDate) : undefined,
    s.toDate !== undefined ? lte(archiveObjects.date, s.toDate) : undefined,
    s.after !== undefined ? gte(archiveObjects.maxTimestamp, s.after) : undefined,
    s.before !== undefined ? lte(archiveObjects.minTimestamp, s.before) : undefined,
    s.idsAfter !== undefined ? gt(archiveObjects.lastId, s.idsAfter) : undefined,
    s.idsThrough !== undefined ? lte(archiveObjects.firstId, s.idsThrough) : undefined,
  ];
}

/**
 * The objects live at manifest version `version` (a number, or versionNow in a batch that reads it)
 * within the scope, in key order after `cursor`, at most `limit`: a page of one consistent set. A
 * batchable query. Replaced objects stay in this set for their versions until forgotten (see
 * ArchiveState.forgottenVersion), also after their R2 objects went ('gone').
 */
export function liveObjectsAt(
  db: Db,
  {
    version,
    scope,
    cursor,
    limit,
  }: { version: number | SQL<number>; scope: ObjectScope; cursor?: string; limit: number },
) {
  return db
    .select()
    .from(archiveObjects)
    .where(
      and(
        sql`${archiveObjects.state} != 'pending'`,
        lte(archiveObjects.liveFrom, version),
        or(isNull(archiveObjects.liveUntil), gt(archiveObjects.liveUntil, version)),
        ...scopeTerms(scope),
        cursor !== undefined ? gt(archiveObjects.key, cursor) : undefined,
      ),
    )
    .orderBy(asc(archiveObjects.key))
    .limit(limit);
}

/**
 * Where a reader stands, in one statement (batchable with the reads it qualifies): the watermark,
 * the manifest version (0 before the first archive run), the forgotten version, and where the older
 * archive ends (before the first run: the watermark, which that run will take as it).
 */
export function readPoint(db: Db) {
  const state = (column: string) => sql.raw(`(SELECT ${column} FROM archive_state WHERE id = 1)`);
  return db
    .select({
      archivedThrough: storageState.archivedThrough,
      version: sql<number>`coalesce(${state("version")}, 0)`,
      forgottenVersion: sql<number>`coalesce(${state("forgotten_version")}, 0)`,
      legacyThrough: sql<number>`coalesce(${state("legacy_through")}, ${storageState.archivedThrough})`,
    })
    .from(storageState)
    .where(eq(storageState.id, 1));
}

export type ReadPoint = { archivedThrough: number; version: number; forgottenVersion: number; legacyThrough: number };

/** One object's manifest row, or undefined. */
export async function objectRow(db: Db, key: string): Promise<ArchiveObjectRow | undefined> {
  const [row] = await db.select().from(archiveObjects).where(eq(archiveObjects.key, key));
  return row;
}

/** One application's live objects in key order after `cursor`, at most `limit`; with `after`/`before`, only those whose time span meets them. */
export function appObjects(
  db: Db,
  app: string,
  {
    cursor,
    after,
    before,
    limit,
  }: { cursor?: string | null; after?: number | null; before?: number | null; limit: number },
): Promise<ArchiveObjectRow[]> {
  return db
    .select()
    .from(archiveObjects)
    .where(
      and(
        eq(archiveObjects.app, app),
        eq(archiveObjects.state, "live"),
        after !== undefined && after !== null ? gte(archiveObjects.maxTimestamp, after) : undefined,
        before !== undefined && before !== null ? lte(archiveObjects.minTimestamp, before) : undefined,
        cursor !== undefined && cursor !== null ? gt(archiveObjects.key, cursor) : undefined,
      ),
    )
    .orderBy(asc(archiveObjects.key))
    .limit(limit);
}

/** One application's retired objects (still in R2 until their grace ends) and pending compaction outputs, at most `limit`. */
export function appObjectsInFlight(db: Db, app: string, limit: number): Promise<ArchiveObjectRow[]> {
  return db
    .select()
    .from(archiveObjects)
    .where(
      and(
        eq(archiveObjects.app, app),
        or(
          eq(archiveObjects.state, "retired"),
          and(eq(archiveObjects.state, "pending"), eq(archiveObjects.origin, "compaction")),
        ),
      ),
    )
    .limit(limit);
}

/** Retires `keys` (live) at the new version, replaced by `replacedBy` (null: by nothing), their R2 objects due for deletion at `deleteAfter`. */
function retire(db: Db, keys: string[], replacedBy: string | null, deleteAfter: number) {
  return db
    .update(archiveObjects)
    .set({ state: "retired", liveUntil: versionNow, replacedBy, deleteAfter })
    .where(and(inArray(archiveObjects.key, keys), eq(archiveObjects.state, "live")));
}

/**
 * Erasure's swap, in one transaction with the request's own counts (`extra`): the object rewritten
 * without the erased rows (`replacement`, live at once; none when no row is left) takes the place
 * of `key`, whose R2 object is due for deletion at `deleteAfter`.
 */
export async function swapRewritten(
  db: Db,
  {
    key,
    replacement,
    deleteAfter,
    now,
    extra,
  }: { key: string; replacement: WrittenObject | null; deleteAfter: number; now: number; extra: BatchItem<"sqlite">[] },
): Promise<void> {
  await db.batch([
    bump(db),
    ...(replacement ? insertPending(db, [replacement], "erasure", now) : []),
    ...(replacement ? [goLive(db, replacement)] : []),
    retire(db, [key], replacement?.key ?? null, deleteAfter),
    ...extra,
  ]);
}

/** How many objects the manifest holds, by state, and their bytes and events: for health and the bench. */
export function manifestSummary(db: Db) {
  return db
    .select({
      state: archiveObjects.state,
      objects: sql<number>`count(*)`,
      bytes: sql<number>`coalesce(sum(${archiveObjects.bytes}), 0)`,
      events: sql<number>`coalesce(sum(${archiveObjects.events}), 0)`,
    })
    .from(archiveObjects)
    .groupBy(archiveObjects.state);
}
