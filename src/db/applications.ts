// Applications by number: events and counts store an application as a small integer
// (applications.num), readers see its id. The directory of applications is small and read once
// per isolate, then again when it is older than its TTL or asked for a number or id it lacks.
import { isNotNull } from "drizzle-orm";
import type { Db } from "./db";
import { applications } from "./schema";

/** Events stored without an application carry this number. */
export const NO_APP = 0;

/** How long an isolate trusts its directory (it is reloaded sooner when asked for a number it lacks). */
export const DIRECTORY_TTL_MS = 60_000;

export interface Directory {
  /** Every application's number, ascending, with NO_APP first. */
  nums: number[];
  idOf(num: number): string | null;
  numOf(id: string): number | undefined;
}

let cached: { directory: Directory; loadedAt: number } | undefined;

async function load(db: Db): Promise<Directory> {
  const rows = await db
    .select({ id: applications.id, num: applications.num })
    .from(applications)
    .where(isNotNull(applications.num));
  const byNum = new Map(rows.map((r) => [r.num!, r.id]));
  const byId = new Map(rows.map((r) => [r.id, r.num!]));
  const directory: Directory = {
    nums: [NO_APP, ...[...byNum.keys()].sort((a, b) => a - b)],
    idOf: (num) => byNum.get(num) ?? null,
    numOf: (id) => byId.get(id),
  };
  cached = { directory, loadedAt: Date.now() };
  return directory;
}

/** The directory, from the isolate's copy while it is fresh. */
export async function directory(db: Db, ttlMs = DIRECTORY_TTL_MS): Promise<Directory> {
  if (cached && Date.now() - cached.loadedAt < ttlMs) return cached.directory;
  return load(db);
}

/** The directory, reloaded if it does not know every one of `nums` (an application created since). */
export async function directoryKnowing(db: Db, nums: Iterable<number>): Promise<Directory> {
  const current = await directory(db);
  for (const num of nums) if (num !== NO_APP && current.idOf(num) === null) return load(db);
  return current;
}

/** An application's number, reloading the directory once if it does not know the id (created since). */
export async function numberKnowing(db: Db, id: string): Promise<number | undefined> {
  return (await directory(db)).numOf(id) ?? (await load(db)).numOf(id);
}

/**
 * The numbers of the application ids a queue batch names. An id the directory does not know is
 * registered (a message can name an application created a moment ago, or, from before keys
 * existed, one never registered): its events are never dropped for want of a number.
 */
export async function numbersOf(db: Db, ids: Iterable<string | null>): Promise<Map<string | null, number>> {
  const wanted = new Set(ids);
  let current = await directory(db);
  const missing = () => [...wanted].filter((id): id is string => id !== null && current.numOf(id) === undefined);
  if (missing().length > 0) current = await load(db);
  const unknown = missing();
  if (unknown.length > 0) {
    await db
      .insert(applications)
      .values(unknown.map((id) => ({ id, name: id, createdAt: Date.now() * 1000 })))
      .onConflictDoNothing();
    current = await load(db);
  }
  return new Map([...wanted].map((id) => [id, id === null ? NO_APP : current.numOf(id)!]));
}

/** Forgets the directory (tests). */
export function clearDirectory(): void {
  cached = undefined;
}
