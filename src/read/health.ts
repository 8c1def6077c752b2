// GET /api/health: liveness for anyone (is D1 answering? which version?), and with a read key for
// every application, the storage picture an operator needs: the database's bytes against its budget
// (HOT_MAX_MB), the effective hot window (oldest event still in D1) and which bound binds, the
// archive watermark, its backlog and whether it stalls the purge, and the retention settings.

import { eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { version } from "../../package.json";
import { directory } from "../db/applications";
import { arrivalsBacklog, maxEventId } from "../db/arrival-reads";
import type { Db } from "../db/db";
import { generationTable, readGenerations } from "../db/generations";
import { databaseBytes } from "../db/purge";
import { readStorageState } from "../db/storage-state";
import type { AppEnv } from "../request/app-env";
import { requireKey } from "../request/auth";
import { readSession } from "../request/read-session";
import { storageFrom } from "../shared/config";
import { DAY, formatTimestamp, nowMicros } from "../shared/timestamp";

const at = (micros: number | null | undefined) =>
  micros === null || micros === undefined ? null : formatTimestamp(micros);

/** The oldest and newest event timestamps D1 holds: per application, an end of the generation's own key. */
async function extremes(db: Db, hotDays: number) {
  const { live } = await readGenerations(db, hotDays, { readOnly: true });
  const apps = (await directory(db)).nums;
  const end = async (gen: number | undefined, pick: "min" | "max") => {
    if (gen === undefined) return null;
    const t = generationTable(gen);
    const rows = await Promise.all(
      apps.map((app) =>
        db
          .select({ v: sql<number | null>`${sql.raw(pick)}(${t.timestamp})` })
          .from(t)
          .where(eq(t.app, app)),
      ),
    );
    const values = rows.map((r) => r[0]?.v).filter((v): v is number => v !== null && v !== undefined);
    return values.length === 0 ? null : pick === "min" ? Math.min(...values) : Math.max(...values);
  };
  return { oldest: await end(live.at(-1), "min"), newest: await end(live[0], "max"), generations: live.length };
}

async function storage(env: Env, reads: D1DatabaseSession) {
  const db = drizzle(reads as unknown as D1Database);
  const settings = storageFrom(env);
  const [state, bytes, maxId] = await Promise.all([readStorageState(db), databaseBytes(db), maxEventId(db)]);
  const window = await extremes(db, settings.hotDays).catch(() => ({ oldest: null, newest: null, generations: 0 }));
  const backlog = await arrivalsBacklog(db, state.archivedThrough);
  const cutoff = nowMicros() - settings.hotDays * DAY;
  // Which bound holds the window where it is: the budget when it last cut below HOT_DAYS within a
  // day, else the days once events older than HOT_DAYS' cutoff are gone, else neither yet.
  const binding =
    state.budgetCutAt !== null && state.budgetCutAt > nowMicros() - DAY
      ? "bytes"
      : window.oldest !== null && state.purgedBefore !== null && state.purgedBefore >= cutoff - DAY
        ? "days"
        : "none";
  const stalled = bytes > settings.hotMaxBytes && backlog > 0;
  return {
    database: { bytes, budget_bytes: settings.hotMaxBytes, used: Number((bytes / settings.hotMaxBytes).toFixed(4)) },
    hot: {
      days: settings.hotDays,
      max_mb: settings.hotMaxBytes / 1024 / 1024,
      binding,
      // The hot window as it is: the oldest event still in D1 (GET /api/export reaches what is older).
      oldest_event: at(window.oldest),
      newest_event: at(window.newest),
      effective_days: window.oldest === null ? null : Number(((nowMicros() - window.oldest) / DAY).toFixed(2)),
      generations: window.generations,
      purged_before: at(state.purgedBefore),
      purged_at: at(state.purgedAt),
      budget_cut_at: at(state.budgetCutAt),
    },
    archive: {
      // Every event id up to the watermark is in R2 for good; ids above it are archived by the next runs.
      watermark_id: state.archivedThrough,
      newest_id: maxId,
      backlog_events: backlog,
      archived_at: at(state.archivedAt),
      // Over the budget with events the archive has not taken yet: nothing can be purged until it does.
      stalled,
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
