// The storage state row: how far the archive has sealed and the hot window has been purged.
import { eq } from "drizzle-orm";
import type { Db } from "./db";
import { storageState } from "./schema";

export interface StorageState {
  archivedThrough: number;
  archivedMaxId: number;
  archivedAt: number | null;
  purgedBefore: number | null;
  purgedAt: number | null;
}

export async function readStorageState(db: Db): Promise<StorageState> {
  const [row] = await db.select().from(storageState).where(eq(storageState.id, 1));
  return row ?? { archivedThrough: 0, archivedMaxId: 0, archivedAt: null, purgedBefore: null, purgedAt: null };
}
