// Reading an archived object's rows for a reader of the manifest (the export, erasure, compaction),
// even when the object went meanwhile: one replaced by a compaction or an erasure has its rows in
// its replacement (the same partition, and within it only that object's id range), which is read
// instead, as far back as the manifest still remembers the chain.
import { objectRow } from "../db/archive-manifest";
import type { Db } from "../db/db";
import type { ArchiveObjectRow } from "../db/schema";
import { getObject } from "./objects";
import { type ArchivedEvent, parquetRows, type RowFilter } from "./parquet";

/** The object's rows the filter keeps, a row group at a time (its replacement's, bounded to its ids, when it is gone). */
export async function* objectRows(
  db: Db,
  bucket: R2Bucket,
  object: Pick<ArchiveObjectRow, "key" | "firstId" | "lastId">,
  filter: RowFilter = {},
): AsyncGenerator<ArchivedEvent[]> {
  let key = object.key;
  let f = filter;
  for (let hops = 0; hops < 16; hops++) {
    const file = await getObject(bucket, key);
    if (file) {
      yield* parquetRows(file, f);
      return;
    }
    const row = await objectRow(db, key);
    // Replaced by nothing (an erasure left no row in it): nothing to read.
    if ((row?.state === "retired" || row?.state === "gone") && row.replacedBy === null) return;
    if (!row?.replacedBy) throw new Error(`archive object ${key} is gone and the manifest names no replacement`);
    f = {
      ...f,
      seqAfter: Math.max(f.seqAfter ?? -Infinity, object.firstId - 1),
      seqThrough: Math.min(f.seqThrough ?? Infinity, object.lastId),
    };
    key = row.replacedBy;
  }
  throw new Error(`archive object ${object.key}: too many replacements to follow`);
}
