// scheduled(): the maintenance that keeps storage from filling. Each run archives the events
// stored since the last one to R2, then carries out the operator's erasure requests (erasure.ts),
// then purges from D1 what is older than the hot window and already archived, then the error
// log's old entries and their hourly counts. Each step has a time budget and picks up where it
// stopped on the next run. Failures go to Sentry tagged with the handler and the cron.

import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { storageState } from "../db/schema";
import { storageFrom } from "../shared/config";
import { createSentry } from "../shared/sentry";
import { DAY } from "../shared/timestamp";
import { type ArchiveRun, archiveNew } from "./archive";
import { ErasureFailed, type ErasureRun, eraseDue } from "./erasure";
import { type PurgeRun, purgeErrorLog, purgeHotWindow } from "./retention";

/** Wall-clock budget per step, in ms: a run stays well inside a scheduled invocation's limits. */
export const STEP_BUDGET_MS = 20_000;

export interface MaintenanceRun {
  archive: ArchiveRun;
  erasure: ErasureRun;
  purge: PurgeRun & { cutoff: number };
  /** deleted: error-log entries; counts: hourly error-count rows. */
  errorLog: PurgeRun & { counts: number; cutoff: number };
}

export async function maintain(env: Env, now: () => number = Date.now): Promise<MaintenanceRun> {
  const settings = storageFrom(env);
  const db = drizzle(env.DB);
  const archive = await archiveNew(db, env.ARCHIVE, {
    blockIds: settings.archiveBlockIds,
    deadline: now() + STEP_BUDGET_MS,
    now,
  });
  const cutoff = now() * 1000 - settings.hotDays * DAY;
  // A request that fails is thrown after retention has run: it holds up nothing else.
  let failure: ErasureFailed | undefined;
  const erasure = await eraseDue(db, env.ARCHIVE, { deadline: now() + STEP_BUDGET_MS, purgeCutoff: cutoff, now }).catch(
    (err: unknown) => {
      if (!(err instanceof ErasureFailed)) throw err;
      failure = err;
      return err.run;
    },
  );
  const purge = await purgeHotWindow(db, { cutoff, deadline: now() + STEP_BUDGET_MS, now });
  if (purge.done)
    await db
      .update(storageState)
      .set({ purgedBefore: cutoff, purgedAt: now() * 1000 })
      .where(eq(storageState.id, 1));
  const errorCutoff = now() * 1000 - settings.errorLogDays * DAY;
  const errorLog = await purgeErrorLog(db, { cutoff: errorCutoff, deadline: now() + STEP_BUDGET_MS, now });
  if (failure) throw failure;
  return { archive, erasure, purge: { ...purge, cutoff }, errorLog: { ...errorLog, cutoff: errorCutoff } };
}

export async function scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
  const sentry = createSentry(env, ctx);
  sentry?.setTag("handler", "scheduled");
  sentry?.setTag("cron", controller.cron);
  sentry?.setExtra("scheduled_time", new Date(controller.scheduledTime).toISOString());
  try {
    const run = await maintain(env);
    console.log(`maintenance: ${JSON.stringify(run)}`);
  } catch (err) {
    sentry?.captureException(err);
    throw err;
  }
}
