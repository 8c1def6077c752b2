// GET /api/export: every event in a time range, hot or archived, as NDJSON streamed while it is
// read (never held in memory whole), each event exactly once while the maintenance runs. The
// export notes where it stands first (the watermark W0 and the manifest version V0, read together),
// then sends
//   1. the older archive's gzip NDJSON objects (ids up to where it ends), listed from R2;
//   2. the Parquet objects live at V0 (every archived id up to W0, each in exactly one of them:
//      a compaction or an erasure after V0 changes nothing it reads, and a replaced object it reaches
//      after its grace is read from its replacement, bounded to its ids);
//   3. D1 above W0 by id, a page at a time, each page read together with the watermark then (W'):
//      if the maintenance archived (p, W'] since the last page, possibly purging some of it from D1,
//      those ids come from the objects live at that version, and D1 only above W'.
// Lines are the query API's results; they come by application and date, not sorted by timestamp.
import { Hono } from "hono";
import { archiveLines, dateOf, legacyObjects, partitionApp } from "../archive/objects";
import type { ArchivedEvent, RowFilter } from "../archive/parquet";
import { objectRows } from "../archive/reader";
import { renderArchived } from "../archive/rows";
import { directoryKnowing } from "../db/applications";
import { liveObjectsAt, type ObjectScope, type ReadPoint, readPoint } from "../db/archive-manifest";
import type { Db } from "../db/db";
import { type EventFilters, listAboveId } from "../db/event-reads";
import { renderEvent } from "../db/render";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { filtersOf, parseQuery, scopeOf } from "../request/query-string";
import { readSession } from "../request/read-session";
import { storageFrom } from "../shared/config";
import { ApiError } from "../shared/errors";
import { exportQuery } from "../shared/schemas";
import { DAY, parseTimestamp } from "../shared/timestamp";

/** Events read from D1 per statement, lines per chunk written to the stream, manifest rows per statement. */
const PAGE = 1000;
const OBJECT_PAGE = 200;

/** Whether an archived line (as rendered) passes the filters; its application is its partition's. */
function lineMatches(line: string, f: EventFilters): boolean {
  const e = JSON.parse(line) as {
    session_id: string;
    timestamp: string;
    category: string;
    name: string;
    context?: { country?: string; device?: string } | null;
  };
  if (f.sessionId !== undefined && e.session_id !== f.sessionId) return false;
  if (f.category !== undefined && e.category !== f.category) return false;
  if (f.name !== undefined && e.name !== f.name) return false;
  if (f.country !== undefined && e.context?.country !== f.country) return false;
  if (f.device !== undefined && e.context?.device !== f.device) return false;
  const at = parseTimestamp(e.timestamp);
  return at.ok && at.micros >= f.after! && at.micros <= f.before!;
}

/** Whether an archived row passes the filters the row filter does not hold (the time range and session it does). */
const rowMatches = (e: ArchivedEvent, f: EventFilters) =>
  (f.category === undefined || e.category === f.category) &&
  (f.name === undefined || e.name === f.name) &&
  (f.country === undefined || e.context?.country === f.country) &&
  (f.device === undefined || e.context?.device === f.device);

interface Plan {
  point: ReadPoint;
  apps: string[] | undefined;
  scope: ObjectScope;
}

/** The manifest's objects live at `version` in `scope`, a page at a time; stops (throws) if the manifest has forgotten that version. */
async function* manifestObjects(db: Db, version: number, scope: ObjectScope) {
  for (let cursor: string | undefined; ; ) {
    const [[point], page] = await db.batch([
      readPoint(db),
      liveObjectsAt(db, { version, scope, cursor, limit: OBJECT_PAGE }),
    ]);
    if (point && point.forgottenVersion > version)
      throw new Error(`the archive manifest no longer holds version ${version}: the export ran past the grace period`);
    yield* page;
    if (page.length < OBJECT_PAGE) return;
    cursor = page[page.length - 1]!.key;
  }
}

async function* exportChunks(env: Env, db: Db, f: EventFilters, plan: Plan): AsyncGenerator<string> {
  const rows: RowFilter = { after: f.after, before: f.before, sessionId: f.sessionId };
  const archived = async function* (scope: ObjectScope, version: number, bound: RowFilter) {
    for await (const object of manifestObjects(db, version, scope))
      for await (const group of objectRows(db, env.ARCHIVE, object, bound)) {
        const lines = group.filter((e) => rowMatches(e, f)).map(renderArchived);
        if (lines.length > 0) yield `${lines.join("\n")}\n`;
      }
  };
  // 1. The older archive.
  let chunk: string[] = [];
  const legacy = await legacyObjects(env.ARCHIVE, {
    apps: plan.apps,
    after: f.after,
    before: f.before,
    legacyThrough: plan.point.legacyThrough,
  });
  for (const key of legacy) {
    for await (const line of archiveLines(env.ARCHIVE, key)) {
      if (!lineMatches(line, f)) continue;
      chunk.push(line);
      if (chunk.length >= PAGE) {
        yield `${chunk.join("\n")}\n`;
        chunk = [];
      }
    }
  }
  if (chunk.length > 0) yield `${chunk.join("\n")}\n`;
  // 2. The manifest at V0.
  yield* archived(plan.scope, plan.point.version, rows);
  // 3. D1 above W0, and what the maintenance archives meanwhile from the archive.
  for (let p = plan.point.archivedThrough; ; ) {
    const [[now], page] = await db.batch([readPoint(db), listAboveId(db, f, p, PAGE)]);
    const watermark = now?.archivedThrough ?? p;
    if (watermark > p) {
      yield* archived({ ...plan.scope, idsAfter: p, idsThrough: watermark }, now!.version, {
        ...rows,
        seqAfter: p,
        seqThrough: watermark,
      });
    }
    const fresh = page.filter((r) => r.id > watermark);
    const apps = await directoryKnowing(db, new Set(fresh.map((r) => r.app)));
    if (fresh.length > 0) yield `${fresh.map((r) => renderEvent(r, apps.idOf(r.app))).join("\n")}\n`;
    if (page.length < PAGE) return;
    p = Math.max(watermark, page[page.length - 1]!.id);
  }
}

export const exportEvents = new Hono<AppEnv>().get("/", requireKey("read"), readSession, async (c) => {
  const q = parseQuery(exportQuery, c.req.queries());
  const f = filtersOf(q, scopeOf(c));
  const missing = [
    f.after === undefined ? "timestamp_after" : null,
    f.before === undefined ? "timestamp_before" : null,
  ].filter((x) => x !== null);
  if (missing.length > 0) {
    throw new ApiError("invalid_query", `invalid query parameter ${missing.join(", ")}: an export needs a time range`, {
      errors: missing.map((field) => ({
        field,
        message: `${field} is required (or its alias ${field.replace("after", "start").replace("before", "end")})`,
      })),
    });
  }
  const maxDays = storageFrom(c.env).exportMaxDays;
  if (f.before! - f.after! > maxDays * DAY) {
    throw new ApiError(
      "invalid_query",
      `invalid query parameter timestamp_before: an export covers at most ${maxDays} days; split the range`,
      {
        errors: [{ field: "timestamp_before", message: `the range is longer than ${maxDays} days` }],
      },
    );
  }
  // Where the export stands is read before answering, so a failure to reach D1 is a 500, not a cut
  // stream. A failure later (R2, D1) cuts the stream: the client sees it end without its last chunk.
  const db = c.get("reads")!;
  const [point] = await readPoint(db);
  const appId = c.get("appId");
  const apps = appId !== undefined ? [partitionApp(appId)] : undefined;
  const plan: Plan = {
    point: point!,
    apps,
    scope: { apps, fromDate: dateOf(f.after!), toDate: dateOf(f.before!), after: f.after, before: f.before },
  };
  const encoder = new TextEncoder();
  const chunks = exportChunks(c.env, db, f, plan);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
  return c.body(body, 200, {
    "Content-Type": "application/x-ndjson; charset=UTF-8",
    "X-Archive-Watermark": String(plan.point.archivedThrough),
  });
});
