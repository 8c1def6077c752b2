// Phase `hot-tier` (issue 16, opt-in): the hot tier's bytes, writes, queries and budget, before (the one
// events table with 14 indexes, `--base`, default 98090c0) and after (the run's code: generations,
// dictionaries, arrivals), side by side in one run:
//   1. GET /api/health's database bytes before/after README-shaped events in 500-event POSTs (20 events per
//      session, two browsers), end to end events/s, then dbstat of each D1 file (wrangler stopped) by table and index;
//   2. D1 rows written (and read) per event all in: ingest, the consumer's batches, then the maintenance until every
//      event is archived and purged (the arrival rows' delete, the purge), counted by each version's probe;
//      the consumer's rows/s through each probe's real queue(); $ per million and a month at 10 M / 100 M / 1 B;
//   3. every query shape at `--hot-rows` (1,000,000) events of 10 applications, p50 interleaved and rows_read from
//      each probe: the base on the loader's data set, the run's code on the same rows upgraded by its own rebuild
//      (migrations to 0010, the rows, 0011, then the rebuild step until `rebuilt_through` is null: timed);
//   4. the done-when check: `npm run dev -- --var HOT_MAX_MB:8 --test-scheduled`, fed far more than 8 MiB with the
//      cron triggered between rounds: the bytes over time, the newest round whole, the export holding every event.
//   npm run bench -- --only hot-tier [--base <commit>] [--hot-rows N] [--ref HEAD]
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { applyMigrations, migrationsHash, stageMigrations } from "../lib/dataset.mjs";
import { latencyLoop, READ_HEADERS, summarize, WRITE_HEADERS, waitForCount, warm } from "../lib/load.mjs";
import {
  d1Files,
  devCommand,
  exportCommit,
  prepareLocal,
  ROOT,
  Server,
  SNAP,
  STATE,
  sleep,
  snapConfig,
  writeDerivedConfig,
  writeProbeConfig,
} from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";
import { dollars, monthly } from "./cost.mjs";
import { readRowsRead, resolveShapes } from "./query.mjs";
import { hotDays as hotDaysOf, RATES } from "./storage.mjs";

export const DEFAULT_BASE = "98090c0";
export const budgetMinutes = ({ quick }) => (quick ? 25 : 70);

const APPS = Array.from({ length: 10 }, (_, i) => `app_hot_${i}`);
const SCOPED_KEY = "bench_read_key_hot_3";
const SCOPED_HEADERS = { authorization: `Bearer ${SCOPED_KEY}` };
const UAS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
];

function versions(baseRef) {
  const baseDir = path.join(STATE, "ht-base");
  const commit = exportCommit(baseRef, baseDir);
  mkdirSync(path.join(baseDir, "bench/probe"), { recursive: true });
  writeFileSync(
    path.join(baseDir, "bench/probe/index.js"),
    execFileSync("git", ["show", `${baseRef}:bench/probe/index.js`], { cwd: ROOT }),
  );
  const baseConfig = path.join(baseDir, "wrangler.toml");
  const headCommit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  return [
    {
      key: "base",
      label: commit,
      root: baseDir,
      config: baseConfig,
      migrationsDir: path.join(baseDir, "migrations"),
      probeConfig: writeDerivedConfig({
        file: path.join(baseDir, "bench/probe/wrangler.toml"),
        main: "bench/probe/index.js",
        nameSuffix: "bench-probe",
        template: baseConfig,
      }),
    },
    {
      key: "head",
      label: `${headCommit}+wt`,
      root: ROOT,
      config: snapConfig(),
      migrationsDir: path.join(SNAP, "migrations"),
      probeConfig: writeProbeConfig(),
    },
  ];
}

/** README-shaped events (its example event, a distinct seq), timestamps `t0` µs on, 20 events per session. */
function readmeBody(n, run, i, t0) {
  const parts = [];
  for (let j = 0; j < n; j++) {
    const ts = new Date(Math.floor((t0 + j * 1000) / 1000)).toISOString().replace("T", " ").replace("Z", "");
    parts.push(
      `{"session_id":"${run}-${i}-${Math.floor(j / 20)}","category":"page interaction","name":"cta click",` +
        `"data":{"host":"www.xxxxx.com","path":"/","element":"chat bubble","seq":${j}},"timestamp":"${ts}"}`,
    );
  }
  return `[${parts.join(",")}]`;
}

/** `total` README events in 500-event POSTs, `concurrency` at a time, the two browsers taking turns. */
async function postReadme(url, { total, run, concurrency = 4, headers = {} }) {
  const requests = Math.ceil(total / 500);
  let next = 0;
  let accepted = 0;
  const t0 = Date.now() * 1000;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= requests) return;
      const n = Math.min(500, total - i * 500);
      const text = readmeBody(n, run, i, t0 + i * 500 * 1000);
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(`${url}/api/event/`, {
          method: "POST",
          headers: {
            ...WRITE_HEADERS,
            "user-agent": UAS[i % 2],
            "cf-connecting-ip": `198.18.1.${i % 250}`,
            ...headers,
          },
          body: text,
        });
        const reply = await res.text();
        if (res.status === 202) {
          accepted += JSON.parse(reply).accepted;
          break;
        }
        if ((res.status === 429 || res.status === 503) && attempt < 50) {
          await sleep(1000);
          continue;
        }
        throw new Error(`POST answered ${res.status}: ${reply.slice(0, 300)}`);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return accepted;
}

async function health(url) {
  const res = await fetch(`${url}/api/health`, { headers: READ_HEADERS });
  const h = await res.json();
  return { bytes: h.storage?.database?.bytes ?? h.database?.bytes ?? h.database?.size ?? null, body: h };
}

async function post(url, p, body) {
  const res = await fetch(`${url}${p}`, { method: "POST", ...(body ? { body } : {}) });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${p}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

async function startDev(v, name, persist, { fresh = true, extra = [], config = v.config } = {}) {
  if (fresh) rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config, root: v.root });
  const server = await Server.start(name, { persist, config, argv: devCommand(v.root), extra });
  await warm(`${server.url}/api/event/?limit=1`, READ_HEADERS);
  return server;
}

const sum = (xs) => xs.reduce((n, x) => n + x, 0);

export async function run(ctx, trivial) {
  const { log, flags } = ctx;
  const V = versions(flags.base ?? DEFAULT_BASE);
  const out = { base: V[0].label, head: V[1].label };
  const only = (process.env.HOT_TIER_STEPS ?? "health,writes,query,budget").split(",");
  log(`hot-tier: ${V[0].label} vs ${V[1].label}; steps ${only.join(",")}`);
  // Each step on its own: one that fails is recorded and the others still run; the results so far are kept on disk.
  const steps = {
    health: () => healthStep(ctx, V),
    writes: () => writesStep(ctx, V),
    query: () => queryStep(ctx, V, trivial),
    budget: () => budgetStep(ctx, V[1]),
  };
  for (const [name, step] of Object.entries(steps)) {
    if (!only.includes(name)) continue;
    try {
      out[name] = await step();
    } catch (err) {
      log(`hot-tier: step ${name} failed: ${err.stack ?? err}`);
      out.failed = [...(out.failed ?? []), { step: name, error: String(err).slice(0, 2000) }];
      for (const v of V) for (const k of ["real", "probe", "query"]) await v[k]?.stop();
    }
    writeFileSync(path.join(STATE, "hot-tier.json"), JSON.stringify(out, null, 2));
  }
  return out;
}

// 1. The issue's own method: health bytes, end to end, then dbstat.
async function healthStep(ctx, V) {
  const { quick, log } = ctx;
  const per = quick ? 10_000 : 40_000;
  const o = { per, passes: [] };
  for (const v of V) {
    v.real = await startDev(v, `ht-${v.key}`, path.join(STATE, `ht-${v.key}-real`));
    v.h0 = (await health(v.real.url)).bytes;
  }
  for (let pass = 0; pass < 2; pass++) {
    for (const v of pass === 0 ? V : [...V].reverse()) {
      log(`hot-tier: ${per} README events in 500-event POSTs into ${v.label}, pass ${pass + 1}`);
      const t0 = Date.now();
      const accepted = await postReadme(v.real.url, { total: per, run: `ht-${pass}-${randomUUID().slice(0, 8)}` });
      const postedS = (Date.now() - t0) / 1000;
      const w = await waitForCount(v.real.url, per * (pass + 1), { timeoutMs: 300_000 });
      const h = await health(v.real.url);
      o.passes.push({
        pass,
        version: v.key,
        accepted,
        postedS,
        seconds: (w.at - t0) / 1000,
        reached: w.reached,
        count: w.count,
        bytes: h.bytes,
        h0: v.h0,
      });
      if (pass === 1) o[`healthBody_${v.key}`] = h.body;
    }
  }
  for (const v of V) await v.real.stop();
  o.dbstat = {};
  for (const v of V)
    o.dbstat[v.key] = await sqliteTask("dbstatFile", { file: d1Files(path.join(STATE, `ht-${v.key}-real`))[0] });
  return o;
}

// 2. Rows written and read per event, all in, and the consumer's rows/s.
async function writesStep(ctx, V) {
  const { quick, log } = ctx;
  const events = quick ? 10_000 : 40_000;
  const o = { events, versions: {} };
  for (const v of V) {
    const persist = path.join(STATE, `ht-${v.key}-probe`);
    rmSync(persist, { recursive: true, force: true });
    prepareLocal(persist, { config: v.probeConfig, root: v.root });
    v.probe = await Server.start(`ht-${v.key}-probe`, { persist, config: v.probeConfig, argv: devCommand(v.root) });
  }
  for (const v of V) {
    const url = v.probe.url;
    log(`hot-tier: writes: ${events} README events in 500-event POSTs, metered, ${v.label}`);
    await post(url, "/__bench/meter?on=1");
    const cpu0 = v.probe.cpuByRole();
    const t0 = Date.now();
    const accepted = await postReadme(url, {
      total: events,
      run: `w-${randomUUID().slice(0, 8)}`,
      headers: { "x-bench-meter": "1" },
    });
    const w = await waitForCount(url, events, { timeoutMs: 300_000 });
    const cpu1 = v.probe.cpuByRole();
    const load = await (await fetch(`${url}/__bench/meter`)).json();
    // The maintenance: now (archive, the arrival rows' delete), then with the clock past the hot window until nothing is left.
    const runs = [];
    const nowMs = Date.now();
    for (const [i, at] of [
      nowMs,
      nowMs + 1000,
      nowMs + 40 * 86_400_000,
      nowMs + 41 * 86_400_000,
      nowMs + 42 * 86_400_000,
    ].entries()) {
      await post(url, "/__bench/meter?on=1");
      const r = await post(url, `/__bench/maintain?now_ms=${at}`);
      runs.push({ i, at, run: r.run, maintain: r.meter.maintain, r2: r.meter.r2 });
    }
    const left = await fetch(`${url}/api/event/?limit=1`, { headers: READ_HEADERS }).then((r) => r.json());
    o.versions[v.key] = {
      accepted,
      visibleSeconds: (w.at - t0) / 1000,
      requests: load.requests,
      messages: load.messages,
      messageBytes: load.messageBytes,
      fetch: strip(load.fetch),
      queue: strip(load.queue),
      cpuRuntimeS: cpu1.runtime - cpu0.runtime,
      cpuProxyS: cpu1.proxy - cpu0.proxy,
      maintain: runs.map((r) => ({ i: r.i, at: r.at, run: summarizeRun(r.run), d1: strip(r.maintain), r2: r.r2 })),
      leftAfterPurge: left.count,
    };
  }
  // The consumer: the same batches through each probe's real queue(), alternating, 2 passes.
  const batches = consumerBatches(quick ? 4 : 12);
  const rows = sum(batches.map((b) => sum(b.map((m) => m.events.length))));
  o.consumer = [];
  for (let pass = 0; pass < 2; pass++) {
    for (const v of pass === 0 ? V : [...V].reverse()) {
      await post(v.probe.url, "/__bench/reset-events");
      await post(v.probe.url, "/__bench/meter?on=0");
      log(`hot-tier: consumer, ${v.label}, pass ${pass + 1}, ${rows} rows`);
      const t0 = performance.now();
      let statements;
      for (const messages of batches) {
        const r = await post(v.probe.url, "/__bench/consume?variant=real", JSON.stringify({ messages }));
        if (r.retried) throw new Error(`consume ${v.label}: ${r.retried} retried`);
        statements = r.statements;
      }
      const seconds = (performance.now() - t0) / 1000;
      o.consumer.push({ pass, version: v.key, rows, seconds, rowsPerSec: rows / seconds, statements });
    }
  }
  for (const v of V) await v.probe.stop();
  return o;
}

const strip = (m) => ({
  statements: m.statements,
  rowsRead: m.rowsRead,
  rowsWritten: m.rowsWritten,
  maxCallMs: m.maxCallMs,
  bySql: Object.fromEntries(
    Object.entries(m.bySql)
      .filter(([, e]) => e.rowsWritten > 0 || e.rowsRead > 1000)
      .sort((a, b) => b[1].rowsWritten - a[1].rowsWritten)
      .slice(0, 14),
  ),
});
const summarizeRun = (r) => ({
  archive: r?.archive ? { rows: r.archive.rows, archivedThrough: r.archive.archivedThrough } : null,
  purge: r?.purge
    ? {
        deleted: r.purge.deleted,
        dropped: r.purge.dropped,
        bound: r.purge.bound,
        done: r.purge.done,
        stalled: r.purge.stalled,
      }
    : null,
  failed: r?.failed,
});

/** Consumer batches of 20 messages × 250 events of app_dev (the probe's seeded application), as 500-event POSTs pack them. */
function consumerBatches(n) {
  const batches = [];
  const receivedAt = Date.now() * 1000;
  let seq = 0;
  for (let b = 0; b < n; b++) {
    const messages = [];
    for (let m = 0; m < 20; m++) {
      const events = [];
      for (let e = 0; e < 250; e++, seq++) {
        events.push({
          event_id: randomUUID(),
          session_id: `s-${Math.floor(seq / 20)}`,
          category: ["page interaction", "navigation", "form", "media", "error"][seq % 5],
          name: `name ${seq % 50}`,
          data: `{"host":"www.xxxxx.com","path":"/p/${seq % 500}","element":"chat bubble"}`,
          timestamp: receivedAt - 3_600_000_000 + seq * 1000,
        });
      }
      messages.push({ kind: "events", app: "app_dev", received_at: receivedAt, events });
    }
    batches.push(messages);
  }
  return batches;
}

// 3. Queries at --hot-rows events of 10 applications.
async function buildHot(ctx, v, rows) {
  const { log, flags } = ctx;
  const dir = path.join(STATE, `ht-${v.key}-query-${rows}`);
  const marker = path.join(dir, "dataset.json");
  const hash = migrationsHash(v.migrationsDir);
  if (!flags.rebuild && existsSync(marker)) {
    const m = JSON.parse(readFileSync(marker, "utf8"));
    if (m.rows === rows && m.hash === hash && d1Files(dir).length === 1) {
      log(`hot-tier: ${v.label}: reusing ${path.relative(ROOT, dir)}`);
      return { dir, file: d1Files(dir)[0], marker: m, reused: true };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const all = readdirSync(v.migrationsDir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  const t0 = Date.now();
  // The rows go into the first schema, the migrations up to 0010 backfill them, then each fills context.
  const s1 = path.join(STATE, `ht-${v.key}-stage1`);
  stageMigrations(v.migrationsDir, s1, (f) => f.startsWith("0000"));
  applyMigrations(dir, { migrationsDir: s1, template: v.config, name: `ht-${v.key}-s1` });
  const [file] = d1Files(dir);
  log(`hot-tier: ${v.label}: loading ${rows} events of 10 applications`);
  const loaded = await sqliteTask("load", { file, rows, seed: 42, apps: APPS });
  const s2 = path.join(STATE, `ht-${v.key}-stage2`);
  stageMigrations(v.migrationsDir, s2, (f) => f < "0011");
  applyMigrations(dir, { migrationsDir: s2, template: v.config, name: `ht-${v.key}-s2` });
  const ctxFill = await sqliteTask("contextFill", { file });
  const t1 = Date.now();
  prepareLocal(dir, { config: v.config, root: v.root }); // 0011 (the run's code) and the dev seed
  const migrateSeconds = (Date.now() - t1) / 1000;
  await sqliteTask("keys", { file, keys: [{ id: "key_bench_hot_3", key: SCOPED_KEY, kind: "read", appId: APPS[3] }] });
  let rebuild = null;
  if (all.some((f) => f.startsWith("0011"))) {
    // The upgrade: the rebuild step, run by the probe as the cron runs it, until rebuilt_through is null.
    const probe = await Server.start(`ht-${v.key}-rebuild`, {
      persist: dir,
      config: v.probeConfig,
      argv: devCommand(v.root),
    });
    const r0 = Date.now();
    rebuild = { runs: 0, moved: 0, maxCallMs: 0, maxDurationMs: 0, rowsWritten: 0, rowsRead: 0 };
    for (;;) {
      await post(probe.url, "/__bench/meter?on=1");
      const r = await post(probe.url, "/__bench/rebuild?budget_ms=20000");
      rebuild.runs++;
      rebuild.moved += r.run.moved;
      rebuild.maxCallMs = Math.max(rebuild.maxCallMs, r.meter.maintain.maxCallMs);
      rebuild.maxDurationMs = Math.max(rebuild.maxDurationMs, r.meter.maintain.maxDurationMs);
      rebuild.rowsWritten += r.meter.maintain.rowsWritten;
      rebuild.rowsRead += r.meter.maintain.rowsRead;
      log(`hot-tier: rebuild run ${rebuild.runs}: moved ${rebuild.moved}, through ${r.run.through}`);
      if (r.run.done || r.run.through === null) break;
      if (rebuild.runs > 500) throw new Error("rebuild did not finish in 500 runs");
    }
    rebuild.seconds = (Date.now() - r0) / 1000;
    await probe.stop();
  }
  const m = {
    rows,
    hash,
    builtAt: new Date().toISOString(),
    loadSeconds: loaded.seconds,
    contextSeconds: ctxFill.seconds,
    migrateSeconds,
    rebuild,
    totalSeconds: (Date.now() - t0) / 1000,
  };
  writeFileSync(marker, JSON.stringify(m, null, 2));
  return { dir, file, marker: m, reused: false };
}

function hotShapes(v) {
  const q = (o) => new URLSearchParams({ ...o, limit: "100" }).toString();
  const range = { timestamp_after: v.day, timestamp_before: v.nextDay };
  const filters = [
    ["none", {}],
    ["session", { session_id: v.sessionId }],
    ["category", { category: v.category }],
    ["name", { name: v.name }],
    ["category+name", { category: v.category, name: v.name }],
    ["country", { country: "DE" }],
    ["device", { device: "mobile" }],
  ];
  const shapes = [];
  for (const [scope, headers] of [
    ["one application", SCOPED_HEADERS],
    ["all 10", READ_HEADERS],
  ])
    for (const [name, f] of filters)
      for (const withRange of [false, true]) {
        // A session belongs to one application: the scoped key's own session.
        const ff = name === "session" && scope === "one application" ? { session_id: v.scopedSessionId } : f;
        shapes.push({
          name: `${name}${withRange ? " + 1-day range" : ""}, ${scope}`,
          mode: "offset",
          offset: 0,
          headers,
          query: q({ ...ff, ...(withRange ? range : {}) }),
        });
      }
  return shapes;
}

async function queryStep(ctx, V, trivial) {
  const { log, flags, quick } = ctx;
  const rows = Number(flags.hotRows ?? process.env.HOT_ROWS ?? (quick ? 100_000 : 1_000_000));
  const o = { rows };
  for (const v of V) v.ds = await buildHot(ctx, v, rows);
  o.datasets = Object.fromEntries(V.map((v) => [v.key, v.ds.marker]));
  const values = await sqliteTask("probeValues", { file: V[0].ds.file, rows });
  values.scopedSessionId = await sqliteTask("sessionOfApp", { file: V[0].ds.file, app: APPS[3] });
  o.values = values;
  for (const v of V) {
    v.shapes = hotShapes(values);
    v.query = await startDev(v, `ht-${v.key}-query`, v.ds.dir, { fresh: false });
    for (const s of v.shapes) await resolveShapes(v.query.url, [s], s.headers);
  }
  const PASSES = 3;
  const slice = (quick ? 0.5 : 1.5) / PASSES;
  const trivTimes = [];
  for (const v of V) v.times = v.shapes.map(() => []);
  for (let pass = 0; pass < PASSES; pass++) {
    log(`hot-tier: query latency, pass ${pass + 1} of ${PASSES}`);
    if (trivial) trivTimes.push(...(await latencyLoop(`${trivial.url}/`, { seconds: slice })).times);
    for (let i = 0; i < V[0].shapes.length; i++)
      for (const v of pass % 2 === 0 ? V : [...V].reverse()) {
        const s = v.shapes[i];
        const r = await latencyLoop(`${v.query.url}/api/event/?${s.query}`, { headers: s.headers, seconds: slice });
        if (Object.keys(r.statuses).some((k) => k !== "200"))
          throw new Error(`${v.label} ${s.name}: ${JSON.stringify(r.statuses)}`);
        v.times[i].push(...r.times);
      }
  }
  for (const v of V) await v.query.stop();
  for (const v of V) {
    const probe = await Server.start(`ht-${v.key}-probe-query`, {
      persist: v.ds.dir,
      config: v.probeConfig,
      argv: devCommand(v.root),
    });
    for (const s of v.shapes) await readRowsRead(probe.url, [s], s.headers);
    await probe.stop();
    for (const [i, s] of v.shapes.entries()) Object.assign(s, summarize(v.times[i]));
  }
  const pick = (s) => ({
    p50: s.p50,
    p99: s.p99,
    n: s.n,
    results: s.results,
    count: s.count,
    rowsList: s.rowsReadList,
    rowsCount: s.rowsReadCount,
    statements: s.statements?.length,
    pageStatements: s.statements?.filter((x) => /order by/i.test(x.sql)).length,
  });
  o.trivialP50 = trivTimes.length ? summarize(trivTimes).p50 : null;
  o.shapes = V[0].shapes.map((s, i) => ({ name: s.name, base: pick(s), head: pick(V[1].shapes[i]) }));
  return o;
}

// 4. The done-when check: HOT_MAX_MB 8 under `npm run dev`, far more than 8 MiB of events, the cron between rounds.
async function budgetStep(ctx, v) {
  const { quick, log } = ctx;
  const rounds = quick ? 4 : 10;
  const per = 20_000;
  const persist = path.join(STATE, "ht-budget");
  const server = await startDev(v, "ht-budget", persist, { extra: ["--var", "HOT_MAX_MB:8", "--test-scheduled"] });
  const o = { rounds, per, samples: [] };
  const cron = async () => {
    for (const p of ["/cdn-cgi/handler/scheduled", "/__scheduled"]) {
      const r = await fetch(`${server.url}${p}`);
      await r.arrayBuffer();
      if (r.ok) return p;
    }
    throw new Error("no scheduled trigger answered");
  };
  const sample = async (label, round) => {
    const h = await health(server.url);
    const s = h.body.storage ?? h.body;
    o.samples.push({
      label,
      round,
      posted: round * per,
      bytes: h.bytes,
      visible: await fetch(`${server.url}/api/event/?limit=1`, { headers: READ_HEADERS })
        .then((r) => r.json())
        .then((j) => j.count),
      binding: s.hot?.binding,
      oldest: s.hot?.oldest_event,
      generations: s.hot?.generations,
      backlog: s.archive?.backlog_events,
      stalled: s.archive?.stalled,
    });
  };
  const t0 = Date.now();
  let firstTs = null;
  let lastRoundStart = null;
  for (let round = 1; round <= rounds; round++) {
    lastRoundStart = new Date().toISOString();
    firstTs ??= lastRoundStart;
    log(`hot-tier: budget: round ${round} of ${rounds}, ${per} events`);
    await postReadme(server.url, { total: per, run: `b${round}-${randomUUID().slice(0, 8)}` });
    // Until the queue has drained: the stored count stops moving.
    let last = -1;
    for (let i = 0; i < 200; i++) {
      const n = await fetch(`${server.url}/api/event/?limit=1`, { headers: READ_HEADERS })
        .then((r) => r.json())
        .then((j) => j.count);
      if (n === last) break;
      last = n;
      await sleep(1500);
    }
    await sample("after POSTs", round);
    o.trigger = await cron();
    await sleep(500);
    await cron(); // a second run: what the first archived, the second may purge
    await sample("after 2 cron runs", round);
  }
  // The newest round whole; every event exported (hot + archive).
  const newest = await fetch(`${server.url}/api/event/?limit=1&timestamp_after=${encodeURIComponent(lastRoundStart)}`, {
    headers: READ_HEADERS,
  }).then((r) => r.json());
  o.newestRound = newest.count;
  const after = new Date(Date.parse(firstTs) - 3_600_000).toISOString();
  const before = new Date(Date.now() + 3_600_000).toISOString();
  const res = await fetch(
    `${server.url}/api/export?timestamp_after=${encodeURIComponent(after)}&timestamp_before=${encodeURIComponent(before)}`,
    { headers: READ_HEADERS },
  );
  const text = await res.text();
  o.exportStatus = res.status;
  const lines = text.split("\n").filter(Boolean);
  const ids = new Set();
  for (const l of lines) {
    try {
      const e = JSON.parse(l);
      ids.add(`${e.session_id}|${e.data?.seq}`);
    } catch {}
  }
  o.exported = lines.length;
  o.exportedDistinct = ids.size;
  o.posted = rounds * per;
  o.seconds = (Date.now() - t0) / 1000;
  await server.stop();
  o.file = await sqliteTask("info", { file: d1Files(persist)[0] }).catch((e) => ({ error: String(e) }));
  return o;
}

// ---------------------------------------------------------------------------------------------
const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x.toFixed(1));
const n2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const x2 = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "—");

/** PostHog's published per-event tiers (prices.mjs' THIRD_PARTY.posthog note): a month of `events` anonymous events. */
export function posthogMonthly(events) {
  const tiers = [
    [1e6, 0],
    [2e6, 0.00005],
    [15e6, 0.0000343],
    [50e6, 0.0000295],
    [100e6, 0.0000218],
    [250e6, 0.000015],
    [Infinity, 0.000009],
  ];
  let prev = 0;
  let total = 0;
  for (const [upTo, price] of tiers) {
    if (events > prev) total += (Math.min(events, upTo) - prev) * price;
    prev = upTo;
  }
  return total;
}

/** Per-event figures of one version's metered run, in the shape cost.mjs' dollars() and monthly() take. */
export function perEventOf(w, bytesPerEvent) {
  const E = w.accepted;
  const maint = w.maintain;
  const isArchive = (k) =>
    !/^(DELETE FROM "?(events|arrivals)|DROP|INSERT INTO "?event_counts|DELETE FROM "?(event_counts|context_counts|type_counts|context_value_counts|sessions|event_types|contexts|generation)|UPDATE "?context_counts)/i.test(
      k,
    );
  const split = (pred, field) =>
    sum(
      maint.flatMap((r) =>
        Object.entries(r.d1.bySql)
          .filter(([k]) => pred(k))
          .map(([, x]) => x[field]),
      ),
    );
  const maintWritten = sum(maint.map((r) => r.d1.rowsWritten));
  const maintRead = sum(maint.map((r) => r.d1.rowsRead));
  // bySql keeps only the heaviest statements; what it leaves out is put with the purge.
  const archW = split(isArchive, "rowsWritten");
  const archR = split(isArchive, "rowsRead");
  const ops = sum(w.messageBytes.map((b) => 3 * Math.ceil(b / 64_000)));
  const puts = sum(maint.map((r) => r.r2.puts));
  return {
    requests: w.requests / E,
    cpuMs: (w.cpuRuntimeS * 1000) / E,
    queueOps: ops / E,
    ingestRowsRead: w.fetch.rowsRead / E,
    ingestRowsWritten: w.fetch.rowsWritten / E,
    consumerRowsWritten: w.queue.rowsWritten / E,
    consumerRowsRead: w.queue.rowsRead / E,
    archiveRowsWritten: archW / E,
    archiveRowsRead: archR / E,
    purgeRowsWritten: (maintWritten - archW) / E,
    purgeRowsRead: (maintRead - archR) / E,
    objectsPer10k: (puts / E) * 10_000,
    r2BytesPerEvent: sum(maint.map((r) => r.r2.putBytes)) / E,
    d1BytesPerEvent: bytesPerEvent,
  };
}

function objectsOf(d) {
  const rows = d.rows;
  const groups = {};
  for (const x of d.objects) {
    let g = x.name;
    if (/^events_g/.test(g) || /^sqlite_autoindex_events_g/.test(g)) {
      // One row per generation table and per index kind.
      const m = /^events_gm?\d+(_\w+)?$/.exec(g);
      g = m ? `events_g* ${m[1] ? `index ${m[1].slice(1)}` : "table (its key)"}` : g;
    }
    groups[g] ??= { name: g, type: x.type, bytes: 0, payload: 0, pages: 0 };
    groups[g].bytes += x.bytes;
    groups[g].payload += x.payload;
    groups[g].pages += x.pages;
  }
  return { rows, list: Object.values(groups).sort((a, b) => b.bytes - a.bytes) };
}

export function render(o) {
  const out = [];
  const B = o.base;
  const H = o.head;
  out.push(`#### The hot tier (issue 16): ${B} (before) and ${H} (after), side by side in one run`);
  out.push("");
  for (const f of o.failed ?? []) out.push(`Step \`${f.step}\` failed in this run: ${f.error.split("\n")[0]}`, "");
  if (o.health) {
    const h = o.health;
    out.push(
      `GET /api/health's database bytes around ${n0(h.per)} README-shaped events in 500-event POSTs (20 events per session, two browsers, 4 POSTs at a time), twice per version, the versions' order reversed in the second pass:`,
    );
    out.push("");
    out.push(
      "| version | pass | health bytes before → after | bytes per event (this pass) | first POST → all visible, s | events/s end to end |",
    );
    out.push("|---|---:|---:|---:|---:|---:|");
    for (const v of ["base", "head"]) {
      let prev = h.passes.find((p) => p.version === v).h0;
      for (const p of h.passes.filter((q) => q.version === v)) {
        out.push(
          `| ${v === "base" ? B : H} | ${p.pass + 1} | ${n0(prev)} → ${n0(p.bytes)} | ${n0((p.bytes - prev) / p.accepted)} | ${n2(p.seconds)}${p.reached ? "" : " (not all)"} | ${n0(p.accepted / p.seconds)} |`,
        );
        prev = p.bytes;
      }
    }
    out.push("");
    const D = { base: objectsOf(h.dbstat.base), head: objectsOf(h.dbstat.head) };
    out.push(
      `dbstat of the same two D1 files after wrangler stopped (${n0(D.base.rows)} and ${n0(D.head.rows)} events, context on: ${n0(h.dbstat.base.withContext)} / ${n0(h.dbstat.head.withContext)} with a context); bytes per event by table and index (the generation tables summed over generations):`,
    );
    out.push("");
    out.push(`| object | ${B} B/event | ${H} B/event |`);
    out.push("|---|---:|---:|");
    const names = [...new Set([...D.base.list, ...D.head.list].map((x) => x.name))];
    const get = (k, n) => D[k].list.find((x) => x.name === n);
    const per = (k, n) => (get(k, n) ? n1(get(k, n).bytes / D[k].rows) : "—");
    const total = (k) => sum(D[k].list.map((x) => x.bytes)) / D[k].rows;
    for (const n of names
      .map((n) => ({ n, b: Math.max(get("base", n)?.bytes ?? 0, get("head", n)?.bytes ?? 0) }))
      .filter((x) => x.b >= 8192)
      .sort((a, b) => b.b - a.b)
      .map((x) => x.n))
      out.push(`| ${n} | ${per("base", n)} | ${per("head", n)} |`);
    const small = (k) =>
      sum(
        D[k].list
          .filter((x) => Math.max(get("base", x.name)?.bytes ?? 0, get("head", x.name)?.bytes ?? 0) < 8192)
          .map((x) => x.bytes),
      ) / D[k].rows;
    out.push(`| everything else (objects under 8 KiB in both) | ${n1(small("base"))} | ${n1(small("head"))} |`);
    out.push(`| **all pages** | **${n1(total("base"))}** | **${n1(total("head"))}** |`);
    out.push("");
  }
  if (o.writes) {
    const w = o.writes;
    const rowsOf = (v) => {
      const x = w.versions[v];
      const maint = sum(x.maintain.map((r) => r.d1.rowsWritten));
      return {
        ingest: x.fetch.rowsWritten / x.accepted,
        consumer: x.queue.rowsWritten / x.accepted,
        maint: maint / x.accepted,
        x,
      };
    };
    const R = { base: rowsOf("base"), head: rowsOf("head") };
    out.push(
      `D1 rows written per event, all in: ${n0(w.events)} README events in 500-event POSTs through each version's probe (metered), then its real maintenance five times (now, +1 s, then the clock 40, 41 and 42 days on: archive, the arrival rows' delete, the purge of every event):`,
    );
    out.push("");
    out.push(`| per event | ${B} | ${H} | after ÷ before |`);
    out.push("|---|---:|---:|---:|");
    const row = (label, f, fmt = n2) =>
      out.push(`| ${label} | ${fmt(f("base"))} | ${fmt(f("head"))} | ${x2(f("head"), f("base"))} |`);
    row("rows written, ingest (fetch)", (v) => R[v].ingest);
    row("rows written, consumer's batches (events, indexes, dictionaries, counts, arrivals)", (v) => R[v].consumer);
    row("rows written, maintenance (archive manifest, arrivals' delete, purge)", (v) => R[v].maint);
    row("**rows written, all in**", (v) => R[v].ingest + R[v].consumer + R[v].maint);
    row("rows read, consumer's batches", (v) => R[v].x.queue.rowsRead / R[v].x.accepted);
    row("rows read, maintenance", (v) => sum(R[v].x.maintain.map((r) => r.d1.rowsRead)) / R[v].x.accepted);
    row("events left in D1 after the purge runs", (v) => R[v].x.leftAfterPurge, n0);
    out.push("");
    out.push("The heaviest statements by rows written (consumer, then the maintenance runs summed), per event:");
    out.push("");
    out.push(`| version | role | statement (first 90 characters) | rows written per event |`);
    out.push("|---|---|---|---:|");
    for (const v of ["base", "head"]) {
      const x = w.versions[v];
      for (const [k, e] of Object.entries(x.queue.bySql).slice(0, 8))
        if (e.rowsWritten > 0)
          out.push(
            `| ${v === "base" ? B : H} | consumer | \`${k.replace(/\|/g, "\\|")}\` | ${n2(e.rowsWritten / x.accepted)} |`,
          );
      const m = {};
      for (const r of x.maintain) for (const [k, e] of Object.entries(r.d1.bySql)) m[k] = (m[k] ?? 0) + e.rowsWritten;
      for (const [k, n] of Object.entries(m)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6))
        if (n > 0)
          out.push(
            `| ${v === "base" ? B : H} | maintenance | \`${k.replace(/\|/g, "\\|")}\` | ${n2(n / x.accepted)} |`,
          );
    }
    out.push("");
    const cons = (v) => w.consumer.filter((c) => c.version === v);
    const rate = (v) => sum(cons(v).map((c) => c.rows)) / sum(cons(v).map((c) => c.seconds));
    out.push(
      `Consumer: ${n0(w.consumer[0].rows)} rows (batches of 20 messages × 250 events of app_dev, 50 names in 5 categories, 20 events per session) through each probe's real queue(), 2 passes alternating: ` +
        `${B} ${n0(rate("base"))} rows/s (${cons("base")
          .map((c) => n0(c.rowsPerSec))
          .join(", ")}), ${H} ${n0(rate("head"))} rows/s (${cons("head")
          .map((c) => n0(c.rowsPerSec))
          .join(
            ", ",
          )}): ${x2(rate("head"), rate("base"))}; D1 statements per batch ${cons("base")[0].statements} → ${cons("head")[0].statements}.`,
    );
    out.push("");
    // Cost.
    const bpe = (v) =>
      o.health ? sum(objectsOf(o.health.dbstat[v]).list.map((x) => x.bytes)) / o.health.dbstat[v].rows : NaN;
    const E = { base: perEventOf(w.versions.base, bpe("base")), head: perEventOf(w.versions.head, bpe("head")) };
    const S = (v) => ({ ...E[v], idlePuts: 0, idleLists: 1 });
    out.push(
      `Cost at Cloudflare's published prices (bench/prices.mjs), from these counts (500-event POSTs; D1 bytes from the dbstat above):`,
    );
    out.push("");
    out.push(`| | ${B} | ${H} | after ÷ before | PostHog (published tiers) |`);
    out.push("|---|---:|---:|---:|---:|");
    const d = { base: dollars(E.base, S("base")), head: dollars(E.head, S("head")) };
    out.push(
      `| $ per million events, no included amounts | ${n2(d.base.total)} | ${n2(d.head.total)} | ${x2(d.head.total, d.base.total)} | — |`,
    );
    out.push(
      `| … of which D1 rows written | ${n2(d.base.items["D1 rows written (consumer + purge)"])} | ${n2(d.head.items["D1 rows written (consumer + purge)"])} | ${x2(d.head.items["D1 rows written (consumer + purge)"], d.base.items["D1 rows written (consumer + purge)"])} | — |`,
    );
    for (const m of [10e6, 100e6, 1e9]) {
      const a = monthly(E.base, S("base"), m).total;
      const b = monthly(E.head, S("head"), m).total;
      const p = posthogMonthly(m);
      out.push(
        `| a month of ${n0(m / 1e6)} M events (Workers Paid, included amounts) | $${n0(a)} | $${n0(b)} | ${x2(b, a)} | $${n0(p)} (after = ${((b / p) * 100).toFixed(1)} % of it) |`,
      );
    }
    out.push("");
    out.push(
      `Hot window in 10 GB (from the dbstat bytes per event above; the byte budget binds after this long at that rate):`,
    );
    out.push("");
    out.push(`| events/s | ${B} days | ${H} days |`);
    out.push("|---:|---:|---:|");
    for (const r of RATES)
      out.push(`| ${n0(r)} | ${n2(hotDaysOf(10e9, r, bpe("base")))} | ${n2(hotDaysOf(10e9, r, bpe("head")))} |`);
    out.push("");
  }
  if (o.query) {
    const q = o.query;
    out.push(
      `Queries at ${n0(q.rows)} events of 10 applications (the loader's rows, a context on each: 6 countries × 3 devices), limit 100, offset page 1 with its count, 1 connection, 3 interleaved passes${q.trivialP50 ? `; trivial Worker p50 ${n2(q.trivialP50)} ms` : ""}. "one application": a read key scoped to app_hot_3; "all 10": the dev read key. k = the page's D1 statements (index ranges merged):`,
    );
    out.push("");
    out.push(
      `| shape | ${B} p50 ms | ${H} p50 ms | after ÷ before | rows read page + count, ${B} | … ${H} | k (${H}) | results (count) |`,
    );
    out.push("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const s of q.shapes)
      out.push(
        `| ${s.name} | ${n2(s.base.p50)} | ${n2(s.head.p50)} | ${x2(s.head.p50, s.base.p50)} | ${n0(s.base.rowsList)} + ${n0(s.base.rowsCount)} | ${n0(s.head.rowsList)} + ${n0(s.head.rowsCount)} | ${s.head.pageStatements ?? "—"} | ${s.head.results} (${n0(s.head.count)}${s.base.count !== s.head.count ? ` vs ${n0(s.base.count)}` : ""}) |`,
      );
    const rb = q.datasets.head?.rebuild;
    if (rb)
      out.push(
        "",
        `The after data set is the before's rows upgraded by the run's own rebuild (migrations to 0010, the rows, 0011, then the maintenance's rebuild step through the probe, 20 s per run as the cron gives it): ` +
          `${n0(rb.moved)} events in ${rb.runs} runs, ${n0(rb.seconds)} s; the longest D1 call ${n0(rb.maxCallMs)} ms (D1's own meta.duration at most ${n0(rb.maxDurationMs)} ms); ${n2(rb.rowsWritten / rb.moved)} rows written per event moved.`,
      );
    out.push("");
  }
  if (o.budget) {
    const b = o.budget;
    out.push(
      `The done-when check: \`npm run dev -- --var HOT_MAX_MB:8 --test-scheduled\` (fresh state), ${b.rounds} rounds of ${n0(b.per)} README events in 500-event POSTs, the cron (${b.trigger}) run twice after each round:`,
    );
    out.push("");
    out.push(
      "| round | events posted | when | health database bytes (MiB) | events in D1 | generations | binding | archive backlog |",
    );
    out.push("|---:|---:|---|---:|---:|---:|---|---:|");
    for (const s of b.samples)
      out.push(
        `| ${s.round} | ${n0(s.posted)} | ${s.label} | ${n0(s.bytes)} (${n2(s.bytes / 1048576)}) | ${n0(s.visible)} | ${s.generations ?? "—"} | ${s.binding ?? "—"} | ${n0(s.backlog)} |`,
      );
    out.push("");
    out.push(
      `Newest round whole: ${n0(b.newestRound)} of ${n0(b.per)} events of the last round still in D1. GET /api/export over the whole run: ${b.exportStatus}, ${n0(b.exported)} events (${n0(b.exportedDistinct)} distinct) of ${n0(b.posted)} posted. D1 file at the end ${n0(b.file?.bytes)} bytes (${b.file?.freelist ?? "?"} free pages of ${b.file?.pageCount ?? "?"}).`,
    );
    out.push("");
  }
  return out;
}
