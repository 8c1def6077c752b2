// scheduled(): the maintenance that keeps storage from filling. Each run archives the events
// stored since the last one to R2 (archive.ts), replays the dead letters kept in R2, compacts the
// archive's small objects and deletes those replaced once their grace is over (compaction.ts),
// carries out the operator's erasure requests (erasure.ts), then purges from D1 what is older than
// the hot window and already archived, then the error log's old entries and their hourly counts.
// Each step has a time budget and its own bounds, and picks up where it stopped on the next run.
// Failures go to Sentry tagged with the handler and the cron.

import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type ReplayRun, replayDeadLetters } from "../consume/consumer";
import { storageState } from "../db/schema";
import { storageFrom } from "../shared/config";
import { createSentry } from "../shared/sentry";
import { DAY } from "../shared/timestamp";
import { type ArchiveRun, archiveNew } from "./archive";
import { type CompactRun, compact } from "./compaction";
import { ErasureFailed, type ErasureRun, eraseDue } from "./erasure";
import { type PurgeRun, purgeErrorLog, purgeHotWindow } from "./retention";

/** Wall-clock budget per step, in ms: a run stays well inside a scheduled invocation's limits. */
export const STEP_BUDGET_MS = 20_000;

export interface MaintenanceRun {
  archive?: ArchiveRun;
  replay?: ReplayRun;
  compact?: CompactRun;
  erasure?: ErasureRun;
  purge?: PurgeRun & { cutoff: number };
  /** deleted: error-log entries; counts: hourly error-count rows. */
  errorLog?: PurgeRun & { counts: number; cutoff: number };
  /** The steps that failed this run, by name; each was reported and the others still ran. */
  failed: string[];
}

/** Several steps failed in one run: each error, with the run's summary. */
export class MaintenanceFailed extends AggregateError {
  constructor(
    readonly run: MaintenanceRun,
    errors: unknown[],
  ) {
    super(errors, `maintenance steps ${run.failed.join(", ")} failed; the others ran, and they resume on the next run`);
    this.name = "MaintenanceFailed";
  }
}

/** A run that returns (none failed) has every step's summary. */
export type CompleteRun = Required<MaintenanceRun>;

export async function maintain(env: Env, now: () => number = Date.now): Promise<CompleteRun> {
  const settings = storageFrom(env);
  const db = drizzle(env.DB);
  const run: MaintenanceRun = { failed: [] };
  const errors: unknown[] = [];
  // Each step is on its own: one that throws is recorded and the rest still run, so a step that
  // always fails (a damaged object, a bug) stops nothing else. Retention never purges above the
  // archive watermark, whatever the archive step did.
  const step = async <K extends Exclude<keyof MaintenanceRun, "failed">>(
    name: K,
    work: () => Promise<MaintenanceRun[K]>,
  ) => {
    try {
      run[name] = await work();
    } catch (err) {
      run.failed.push(name);
      errors.push(err);
      if (err instanceof ErasureFailed) run[name] = err.run as MaintenanceRun[K];
    }
  };
  await step("archive", () => archiveNew(db, env.ARCHIVE, { deadline: now() + STEP_BUDGET_MS, now }));
  await step("replay", () => replayDeadLetters(env, { deadline: now() + STEP_BUDGET_MS, now }));
  await step("compact", () => compact(db, env.ARCHIVE, { deadline: now() + STEP_BUDGET_MS, now }));
  await step("erasure", () => eraseDue(db, env.ARCHIVE, { deadline: now() + STEP_BUDGET_MS, now }));
  const cutoff = now() * 1000 - settings.hotDays * DAY;
  await step("purge", async () => {
    const purge = await purgeHotWindow(db, { cutoff, deadline: now() + STEP_BUDGET_MS, now });
    if (purge.done)
      await db
        .update(storageState)
        .set({ purgedBefore: cutoff, purgedAt: now() * 1000 })
        .where(eq(storageState.id, 1));
    return { ...purge, cutoff };
  });
  const errorCutoff = now() * 1000 - settings.errorLogDays * DAY;
  await step("errorLog", async () => ({
    ...(await purgeErrorLog(db, { cutoff: errorCutoff, deadline: now() + STEP_BUDGET_MS, now })),
    cutoff: errorCutoff,
  }));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new MaintenanceFailed(run, errors);
  return run as CompleteRun;
}

export async function scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
  const sentry = createSentry(env, ctx);
  sentry?.setTag("handler", "scheduled");
  sentry?.setTag("cron", controller.cron);
  sentry?.setExtra("scheduled_time", new Date(controller.scheduledTime).toISOString());
  try {
    const run = await maintain(env);
    // One JSON object, one line: Workers Logs indexes its fields (filter on msg = "maintenance").
    console.log(JSON.stringify({ msg: "maintenance", ...run }));
  } catch (err) {
    sentry?.captureException(err);
    throw err;
  }
}
