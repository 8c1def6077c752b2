// GET /api/health: liveness for anyone (is D1 answering? which version?), and with a read key for
// every application, the storage picture an operator needs: database size, the hot window's oldest
// and newest events, the archive watermark and backlog, and the retention settings.
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { version } from "../../package.json";
import { readStorageState } from "../db/storage-state";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { readSession } from "../request/read-session";
import { storageFrom } from "../shared/config";
import { formatTimestamp } from "../shared/timestamp";

const at = (micros: number | null | undefined) =>
  micros === null || micros === undefined ? null : formatTimestamp(micros);

async function storage(env: Env, reads: D1DatabaseSession) {
  // One statement per extreme: SQLite answers a lone min() or max() from the index's end.
  const [oldest, newest, top] = await reads.batch<{ v: number | null }>([
    reads.prepare("SELECT min(timestamp) AS v FROM events"),
    reads.prepare("SELECT max(timestamp) AS v FROM events"),
    reads.prepare("SELECT max(id) AS v FROM events"),
  ]);
  const state = await readStorageState(drizzle(reads as unknown as D1Database));
  const settings = storageFrom(env);
  const maxId = top!.results[0]?.v ?? 0;
  return {
    database: { bytes: top!.meta.size_after },
    hot: {
      days: settings.hotDays,
      oldest_event: at(oldest!.results[0]?.v),
      newest_event: at(newest!.results[0]?.v),
      purged_before: at(state.purgedBefore),
      purged_at: at(state.purgedAt),
    },
    archive: {
      // Every event id up to the watermark is in R2 for good; ids above it are archived by the next runs.
      watermark_id: state.archivedThrough,
      newest_id: maxId,
      backlog_events: Math.max(0, maxId - state.archivedThrough),
      archived_at: at(state.archivedAt),
    },
    error_log: { days: settings.errorLogDays },
  };
}

export const health = new Hono<AppEnv>().get("/", readSession, async (c) => {
  // A key is optional here; one that is sent must be a valid read key.
  if (c.req.header("authorization") !== undefined) await requireKey("read")(c, async () => {});
  const allApps = c.get("keyId") !== undefined && c.get("appId") === undefined;
  let database = "ok";
  try {
    await c.get("readsRaw")!.prepare("SELECT 1").first();
  } catch {
    database = "unavailable";
  }
  const body = { status: database === "ok" ? "ok" : "degraded", service: "The Eye", version, database };
  if (database !== "ok") return c.json(body, 503);
  if (!allApps) return c.json(c.get("keyId") ? { ...body, storage: "needs a read key for every application" } : body);
  return c.json({ ...body, storage: await storage(c.env, c.get("readsRaw")!) });
});
