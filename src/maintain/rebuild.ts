// The rebuild of the pre-0011 events table (one table, 14 indexes) into generations, for a database
// that had events before the upgrade: a chunk at a time, newest first, each event keeping its id (so
// the archive watermark still means what it meant), stored as the consumer stores it and then deleted
// from the old table. Resumable: a run stopped between the two finds the chunk again, and what a
// generation already holds is not stored (nor counted) again. No statement touches more than a
// chunk, so none nears D1's 30 s.
import { eq } from "drizzle-orm";
import type { Db } from "../db/db";
import { insertAll } from "../db/event-insert";
import { alreadyStored, deleteLegacy, legacyChunk, legacyMaxId } from "../db/legacy";
import { storageState } from "../db/schema";
import { readStorageState } from "../db/storage-state";

/** Old events moved per D1 batch. */
export const REBUILD_CHUNK = 1_000;

export interface RebuildRun {
  moved: number;
  /** Legacy ids at or above this are moved; null when there is nothing (left) to rebuild. */
  through: number | null;
  done: boolean;
}

export async function rebuildLegacy(
  db: Db,
  {
    hotDays,
    deadline,
    chunk = REBUILD_CHUNK,
    now = Date.now,
  }: { hotDays: number; deadline: number; chunk?: number; now?: () => number },
): Promise<RebuildRun> {
  const state = await readStorageState(db);
  let through = state.rebuiltThrough;
  if (through === null) {
    const max = await legacyMaxId(db);
    if (max === 0) return { moved: 0, through: null, done: true };
    through = max + 1;
    await db.update(storageState).set({ rebuiltThrough: through }).where(eq(storageState.id, 1));
  }
  const run: RebuildRun = { moved: 0, through, done: false };
  while (now() < deadline) {
    const rows = await legacyChunk(db, through - 1, chunk);
    if (rows.length === 0) {
      await db.update(storageState).set({ rebuiltThrough: null }).where(eq(storageState.id, 1));
      return { ...run, through: null, done: true };
    }
    // Those a stopped run already stored (and counted) are not stored again. Events the archive
    // already holds need no arrival rows; those above the watermark do.
    const stored = await alreadyStored(db, rows);
    for (const archived of [true, false]) {
      const part = rows.filter((r) => !stored.has(r.id) && r.id <= state.archivedThrough === archived);
      if (part.length > 0)
        await insertAll(
          db,
          part.map((r) => r.row),
          [],
          { hotDays, ids: part.map((r) => r.id), toArchive: !archived },
        );
    }
    through = rows.at(-1)!.id;
    await db.batch([
      deleteLegacy(
        db,
        rows.map((r) => r.id),
      ),
      db.update(storageState).set({ rebuiltThrough: through }).where(eq(storageState.id, 1)),
    ]);
    run.moved += rows.length;
    run.through = through;
  }
  return run;
}
