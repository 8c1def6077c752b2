// GET /api/export: every event in a time range, hot or archived, as NDJSON streamed while it is
// read (never held in memory whole). Sealed archive objects (ids up to the archive watermark) come
// from R2, the events above the watermark from D1, so each event is sent exactly once whether or
// not retention has purged it from D1 yet. Lines are the query API's results; they come by
// application and hour, in storage order within each, not sorted by timestamp.
import { Hono } from "hono";
import { archiveLines, archiveObjects } from "../archive/objects";
import { directoryKnowing } from "../db/applications";
import { listAboveId } from "../db/arrival-reads";
import type { Db } from "../db/db";
import type { EventFilters } from "../db/event-reads";
import { renderEvent } from "../db/render";
import { readStorageState } from "../db/storage-state";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { filtersOf, parseQuery, scopeOf } from "../request/query-string";
import { readSession } from "../request/read-session";
import { storageFrom } from "../shared/config";
import { ApiError } from "../shared/errors";
import { exportQuery } from "../shared/schemas";
import { DAY, parseTimestamp } from "../shared/timestamp";

/** Events read from D1 per statement, and lines per chunk written to the stream. */
const PAGE = 1000;

/** Whether an archived line (as rendered) passes the filters; its application is its partition's. */
function matches(line: string, f: EventFilters): boolean {
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

/** What an export reads: the sealed archive objects in range, then D1 above the watermark. */
async function planExport(env: Env, db: Db, f: EventFilters, appId: string | undefined) {
  const { archivedThrough } = await readStorageState(db);
  const keys = await archiveObjects(env.ARCHIVE, {
    appIds: appId !== undefined ? [appId] : undefined,
    after: f.after!,
    before: f.before!,
    archivedThrough,
  });
  return { archivedThrough, keys };
}

async function* exportChunks(
  env: Env,
  db: Db,
  f: EventFilters,
  plan: Awaited<ReturnType<typeof planExport>>,
): AsyncGenerator<string> {
  let chunk: string[] = [];
  for (const key of plan.keys) {
    for await (const line of archiveLines(env.ARCHIVE, key)) {
      if (!matches(line, f)) continue;
      chunk.push(line);
      if (chunk.length >= PAGE) {
        yield `${chunk.join("\n")}\n`;
        chunk = [];
      }
    }
  }
  if (chunk.length > 0) yield `${chunk.join("\n")}\n`;
  for (let after = plan.archivedThrough; ; ) {
    const rows = await listAboveId(db, f, after, PAGE);
    const apps = await directoryKnowing(db, new Set(rows.map((r) => r.app)));
    if (rows.length > 0) yield `${rows.map((r) => renderEvent(r, apps.idOf(r.app))).join("\n")}\n`;
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]!.id;
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
  // The plan is made before answering, so a failure to reach D1 or R2 is a 500, not a cut stream.
  // One D1 session for the whole export: the watermark and the rows above it come from one state.
  const db = c.get("reads")!;
  const plan = await planExport(c.env, db, f, c.get("appId"));
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
    "X-Archive-Watermark": String(plan.archivedThrough),
  });
});
