// Phase `storage` (issue 8): where a stored event's bytes go, by table and index (SQLite's dbstat),
// in the schema before compact events (16f69f7, `--base`) and in the run's; how many days one D1 holds
// at a given rate; what the archive stores per event in R2, counted through the real maintenance in the
// probe (the formats compared: the `archive` phase); how long migration 0005 takes per million events
// under `wrangler d1 migrations apply --local`.
import { copyFileSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { applyMigrations, stageMigrations } from "../lib/dataset.mjs";
import {
  d1Files,
  devCommand,
  exportCommit,
  prepareLocal,
  Server,
  SNAP,
  STATE,
  writeProbeConfig,
} from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";

/** Minutes this phase adds to the run's budget. */
export const budgetMinutes = () => 4;
export const DEFAULT_BASE = "16f69f7";
/** A few applications, with ids shaped as `npm run keys -- create-app` makes them. */
export const APPS = ["app_3f9c2a7d41e0b815", "app_8d14e6b07c3a92f5", "app_c2b7f0e19a4d6583", "app_51e8d3c6a0f27b94"];
/** The archive's events arrive at this rate (their timestamps are this far apart), over the apps in turn. */
const ARCHIVE_RATE = 100;
/** Rates and database sizes for the hot-window table. */
export const RATES = [10, 100, 1_000, 10_000];
export const CAPACITIES = [
  { label: "10 GB (Workers Paid)", bytes: 10e9 },
  { label: "500 MB (Free)", bytes: 500e6 },
];

export async function run(ctx) {
  const { quick, log, flags } = ctx;
  const out = {
    sizes: {
      storageRows: quick ? 50_000 : 200_000,
      archiveEvents: quick ? 20_000 : 100_000,
      migrateRows: quick ? 100_000 : 1_000_000,
    },
  };
  const baseRef = flags.base ?? DEFAULT_BASE;
  const baseDir = path.join(STATE, "storage-base");
  out.base = exportCommit(baseRef, baseDir);

  // a. Bytes per event, by table and index: a fresh file of each schema, filled as the consumer fills it.
  out.bytes = [];
  for (const [version, migrationsDir] of [
    [out.base, path.join(baseDir, "migrations")],
    ["run", path.join(SNAP, "migrations")],
  ]) {
    log(`storage: ${out.sizes.storageRows} README-shaped events into a fresh ${version} schema (dbstat)`);
    out.bytes.push({
      version,
      ...(await sqliteTask("storage", {
        migrationsDir,
        rows: out.sizes.storageRows,
        apps: APPS,
        txnRows: 5000,
        spanHours: 24,
      })),
    });
  }

  // c. The archive, through the real code: the probe's queue() stores the events, its maintenance archives them.
  out.archive = await archive(ctx, out.sizes.archiveEvents);

  // d. Migration 0005 per million events, as `wrangler d1 migrations apply --local` runs it.
  out.migrate = await migrationTime(ctx, out.sizes.migrateRows);
  return out;
}

/** `n` README-shaped events for APPS at ARCHIVE_RATE, as consumer batches of 20 messages (one application each) × 250 events. */
function archiveBatches(n) {
  const start = Date.UTC(2021, 0, 4) * 1000;
  const batches = [];
  const perBatch = 5000;
  for (let b = 0; b * perBatch < n; b++) {
    const byApp = new Map(APPS.map((a) => [a, []]));
    for (let i = b * perBatch; i < Math.min(n, (b + 1) * perBatch); i++) {
      const timestamp = start + Math.floor((i * 1e6) / ARCHIVE_RATE);
      byApp.get(APPS[i % APPS.length]).push({
        event_id: crypto.randomUUID(),
        session_id: crypto.randomUUID(),
        category: ["page interaction", "navigation", "form", "media", "error"][i % 5],
        name: [
          "cta click",
          "page view",
          "submit",
          "play",
          "js error",
          "scroll",
          "link click",
          "field focus",
          "pause",
          "timeout",
        ][i % 10],
        data: `{"host":"www.xxxxx.com","path":"/p/${i % 500}","element":"chat bubble"}`,
        timestamp,
      });
    }
    const messages = [];
    for (const [app, events] of byApp) {
      for (let i = 0; i < events.length; i += 250)
        messages.push({ kind: "events", app, received_at: Date.now() * 1000, events: events.slice(i, i + 250) });
    }
    batches.push(messages);
  }
  return batches;
}

/** The archive step alone (the cost phase runs it when this phase did not run). */
export async function archive(ctx, n) {
  const { log } = ctx;
  const config = writeProbeConfig();
  const persist = path.join(STATE, "storage-probe");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config });
  const probe = await Server.start("storage-probe", { persist, config, argv: devCommand() });
  log(
    `storage: ${n} events of ${APPS.length} applications at ${ARCHIVE_RATE}/s through the probe's queue(), then its maintenance`,
  );
  for (const messages of archiveBatches(n)) {
    const res = await fetch(`${probe.url}/__bench/consume?variant=real`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages }),
    });
    if (!res.ok) throw new Error(`consume: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }
  await probe.stop(); // the D1 file as the consumer left it
  const d1 = await sqliteTask("info", { file: d1Files(persist)[0] });
  const probe2 = await Server.start("storage-probe", { persist, config, argv: devCommand() });
  /** A probe route's JSON answer; throws on an error status. */
  const call2 = async (p, method = "POST") => {
    const res = await fetch(`${probe2.url}${p}`, { method });
    const o = await res.json();
    if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(o)}`);
    return o;
  };
  // Runs of the real maintenance until the archive is done (each step has a 20 s budget), then one more
  // with nothing new: what a cron run costs when idle.
  const runs = [];
  for (let i = 0; i < 20; i++) {
    await call2("/__bench/meter?on=1");
    const t0 = performance.now();
    const r = await call2("/__bench/maintain");
    runs.push({ seconds: (performance.now() - t0) / 1000, run: r.run, meter: r.meter });
    if (r.run.archive.done && r.run.purge.done) break;
  }
  await call2("/__bench/meter?on=1");
  const idle = await call2("/__bench/maintain");
  await call2("/__bench/meter?on=0");
  const live = (await call2("/__bench/manifest", "GET")).rows.filter((r) => r.state === "live");
  await probe2.stop();
  return {
    events: live.reduce((n, r) => n + r.events, 0),
    d1,
    runs,
    idle: { run: idle.run, meter: idle.meter },
    objects: live.reduce((n, r) => n + r.objects, 0),
    bytes: live.reduce((n, r) => n + r.bytes, 0),
    rate: ARCHIVE_RATE,
    apps: APPS.length,
  };
}

/**
 * Loads `rows` events into the schema before migration 0005 (migrations up to the one creating `events`,
 * the rows, then the rest up to 0004 with their backfills), then times `wrangler d1 migrations apply
 * --local` of 0005, a second apply with nothing left (wrangler's own start-up), and 0005's statements
 * on a copy of the same file with node:sqlite.
 */
async function migrationTime(ctx, rows) {
  const { log } = ctx;
  const migDir = path.join(SNAP, "migrations");
  const all = readdirSync(migDir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const target = all.find((f) => /compact_events/.test(f)) ?? all[all.length - 1];
  const firstWithEvents = all.findIndex((f) =>
    /CREATE TABLE [`"]?events[`"]?/i.test(readFileSync(path.join(migDir, f), "utf8")),
  );
  const dir = path.join(STATE, `migrate-${rows}`);
  rmSync(dir, { recursive: true, force: true });
  const stage = path.join(STATE, "migrate-stage");
  stageMigrations(migDir, stage, (f) => all.indexOf(f) <= firstWithEvents);
  applyMigrations(dir, { migrationsDir: stage, name: "migrate" });
  const [file] = d1Files(dir);
  log(`storage: ${rows} events into the schema before ${target}`);
  const loaded = await sqliteTask("load", { file, rows, apps: APPS, seed: 42 });
  stageMigrations(migDir, stage, (f) => f < target);
  const before = applyMigrations(dir, { migrationsDir: stage, name: "migrate" });
  const copy = path.join(STATE, "migrate-raw.sqlite");
  for (const suffix of ["", "-wal"]) {
    rmSync(copy + suffix, { force: true });
    try {
      copyFileSync(file + suffix, copy + suffix);
    } catch {}
  }
  const info0 = await sqliteTask("info", { file });
  stageMigrations(migDir, stage, (f) => f <= target);
  log(`storage: wrangler d1 migrations apply --local of ${target} over ${rows} events`);
  const wranglerSeconds = applyMigrations(dir, { migrationsDir: stage, name: "migrate" });
  const noopSeconds = applyMigrations(dir, { migrationsDir: stage, name: "migrate" });
  const info1 = await sqliteTask("info", { file });
  const raw = await sqliteTask("migrate", { file: copy, migration: path.join(migDir, target) });
  for (const suffix of ["", "-wal", "-shm"]) rmSync(copy + suffix, { force: true });
  return {
    rows,
    target,
    loadSeconds: loaded.seconds,
    earlierSeconds: before,
    wranglerSeconds,
    noopSeconds,
    rawSeconds: raw.seconds,
    longest: raw.longest,
    bytesBefore: info0.bytes,
    bytesAfter: info1.bytes,
  };
}

const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 100 ? n0(x) : x.toFixed(1));

/** Bytes per event of a dbstat result: the events table, each of its indexes, the roll-ups, and the rest. */
export function perEvent(b) {
  const ev = b.objects.filter(
    (o) => o.name === "events" || b.indexes.some((i) => i.name === o.name) || /^sqlite_autoindex_events/.test(o.name),
  );
  const rollups = b.objects.filter((o) => o.name === "event_counts" || o.name === "rollup_mark");
  const eventBytes = ev.reduce((n, o) => n + o.bytes, 0);
  return { objects: ev, rollups: rollups.reduce((n, o) => n + o.bytes, 0), eventBytes, perEvent: eventBytes / b.rows };
}

/** Days of events one database of `capacity` bytes holds at `rate` events/s, `bytes` per event (roll-ups apart). */
export const hotDays = (capacity, rate, bytes) => capacity / (bytes * rate * 86_400);

export function render(o) {
  const out = [];
  out.push(`#### Storage (issue 8)`);
  out.push("");
  const [before, after] = o.bytes;
  const pb = perEvent(before);
  const pa = perEvent(after);
  out.push(
    `Bytes per event by table and index: ${n0(before.rows)} README-shaped events of ${before.apps} applications over ${before.spanHours} h, stored in transactions of ${before.txnRows} with the consumer's roll-up, in a fresh file of each schema (node:sqlite, page 4096 B, SQLite's \`dbstat\`: whole pages, free space in them included):`,
  );
  out.push("");
  out.push(`| object | ${before.version} (text app_id, 36-character event_id) B/event | this run's schema B/event |`);
  out.push("|---|---:|---:|");
  const names = [...new Set([...pb.objects, ...pa.objects].map((x) => x.name))];
  for (const name of names) {
    const b = pb.objects.find((x) => x.name === name);
    const a = pa.objects.find((x) => x.name === name);
    out.push(`| ${name} | ${b ? n1(b.bytes / before.rows) : "—"} | ${a ? n1(a.bytes / after.rows) : "—"} |`);
  }
  out.push(`| **events and its indexes** | **${n1(pb.perEvent)}** | **${n1(pa.perEvent)}** |`);
  out.push(
    `| roll-ups (event_counts, rollup_mark): B per roll-up row (rows) | ${n1(pb.rollups / before.rollupRows)} (${n0(before.rollupRows)}) | ${n1(pa.rollups / after.rollupRows)} (${n0(after.rollupRows)}) |`,
  );
  out.push("");
  out.push(
    "Hot window, days = database bytes ÷ (bytes per event × events/s × 86,400), with this run's schema's bytes per event (roll-ups add at most 66 rows per application-hour, under 0.5 % of an event's bytes at ≥ 10 events/s):",
  );
  out.push("");
  out.push(`| events/s | ${CAPACITIES.map((c) => c.label).join(" | ")} |`);
  out.push(`|---:|${CAPACITIES.map(() => "---:").join("|")}|`);
  for (const r of RATES)
    out.push(
      `| ${n0(r)} | ${CAPACITIES.map((c) => {
        const d = hotDays(c.bytes, r, pa.perEvent);
        return d >= 1
          ? `${d.toFixed(1)} days`
          : d * 24 >= 1
            ? `${(d * 24).toFixed(1)} hours`
            : `${Math.round(d * 1440)} minutes`;
      }).join(" | ")} |`,
    );
  out.push("");
  const a = o.archive;
  const objs = a.runs.reduce((n, r) => n + r.meter.r2.puts, 0);
  out.push(
    `Archive (the real maintenance, in the probe): ${n0(a.events)} events of ${a.apps} applications, timestamps ${a.rate}/s apart, stored by the real queue(), then archived as Parquet: ` +
      `${n0(a.objects)} live objects, ${n0(a.bytes)} bytes, **${n1(a.bytes / a.events)} B per event**, ${(a.objects / (a.events / 10_000)).toFixed(1)} objects per 10,000 events; ` +
      `${n0(objs)} R2 puts in ${a.runs.length} maintenance run(s); a further run with nothing new put ${n0(a.idle.meter.r2.puts)} objects and listed ${n0(a.idle.meter.r2.lists)} times. ` +
      `The consumer's D1 file held ${n1(a.d1.bytes / a.d1.rows)} B per event (${n0(a.d1.rows)} events). The formats compared: the archive phase.`,
  );
  out.push("");
  const m = o.migrate;
  out.push(
    `Migration ${m.target} over ${n0(m.rows)} events (${APPS.length} applications): \`wrangler d1 migrations apply --local\` ${m.wranglerSeconds.toFixed(1)} s, of which wrangler's own start-up ≈ ${m.noopSeconds.toFixed(1)} s (an apply with nothing left); ` +
      `its statements alone on a copy with node:sqlite ${m.rawSeconds.toFixed(1)} s${m.longest ? ` (longest: ${m.longest.map((x) => `\`${x.sql.slice(0, 40)}…\` ${x.seconds.toFixed(1)} s`).join(", ")})` : ""}; ` +
      `**≈ ${((m.wranglerSeconds - m.noopSeconds) / (m.rows / 1e6)).toFixed(1)} s per million events**. File ${n0(m.bytesBefore / 1048576)} → ${n0(m.bytesAfter / 1048576)} MiB.`,
  );
  out.push("");
  return out;
}
