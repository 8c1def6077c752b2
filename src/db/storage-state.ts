// The storage state row: how far the archive has sealed and the hot window has been purged.
import { eq } from "drizzle-orm";
import type { Db } from "./db";
import { storageState } from "./schema";

export type StorageState = typeof storageState.$inferSelect;

export async function readStorageState(db: Db): Promise<StorageState> {
  const [row] = await db.select().from(storageState).where(eq(storageState.id, 1));
  return (
    row ?? {
      id: 1,
      archivedThrough: 0,
      archivedMaxId: 0,
      archivedAt: null,
      purgedBefore: null,
      purgedAt: null,
      nextId: 1,
      genSpan: null,
      rebuiltThrough: null,
      budgetCutAt: null,
      budgetReportedAt: null,
    }
  );
}
