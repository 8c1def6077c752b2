// The Eye's benchmark suite (issue 4): `npm run bench` (full, ~7 min) or `npm run bench -- --quick`.
// Starts everything it needs on 127.0.0.1 (wrangler dev instances on ports 8800–8899, each with its
// own --persist-to under bench/.state), runs every measurement side by side with its ceiling, prints
// a table and (full runs) writes it into BENCHMARKS.md. See bench/README.md.
//
// Flags: --quick         small sizes (a couple of minutes; results go to bench/.results/ only)
//        --only a,b      phases: e2e, ingest, counts, consumer, fix, query, quiet, keycache, flood,
//                        and memory (opt-in: only when named here)
//        --no-write      do not touch BENCHMARKS.md
//        --rebuild       reload the query data set even if a cached one matches
//        --ref <commit>  bench that commit's src/, migrations/ and wrangler.toml instead of the working tree
//        --flood-base <commit>, --flood-rate <req/s>   the `flood` phase's code before the fix, and its flood's pace
//        --minutes <n>, --control-minutes <m>, --clients each   the `memory` phase's load (10 min), its
//                        control's (half that; 0 = none), a new client address per request instead of 1,000
import { execFileSync } from "node:child_process";
import { randomUUID, createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  ROOT, SNAP, STATE, Server, d1Files, devCommand, killAllSync, makeSnapshot, prepareLocal, snapConfig, sleep, stopAll, writeDerivedConfig, writeProbeConfig, withBatchTimeout, childEnv,
} from "./lib/servers.mjs";
import { READ_HEADERS, WRITE_HEADERS, body, cannon, countVisible, latencyLoop, measureLoad, postBatches, settle, summarize, waitForCount, warm, pct } from "./lib/load.mjs";
import { sqliteNode, sqliteTask } from "./lib/sqlite.mjs";
import { render, writeBenchmarksMd } from "./lib/report.mjs";
import * as authFlood from "./phases/auth-flood.mjs";
import * as memory from "./phases/memory.mjs";

const argv = process.argv.slice(2);
/** The value of `--name v` or `--name=v`. */
const flag = (name) => {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return argv[i].includes("=") ? argv[i].slice(name.length + 1) : argv[i + 1];
};
const QUICK = argv.includes("--quick");
const ONLY = flag("--only")?.split(",") ?? null;
const run = (phase) => (!ONLY || ONLY.includes(phase)) && !(argv.includes("--no-quiet") && phase === "quiet");

// Phases that are modules of their own (bench/phases/): each has run(ctx) → results and render(results) → markdown lines.
// An opt-in phase runs only when --only names it.
const PHASES = [
  { name: "flood", module: authFlood },
  { name: "memory", module: memory, optIn: true },
];
const runModule = (p) => (p.optIn ? !!ONLY?.includes(p.name) : run(p.name));
const FLAGS = {
  ref: flag("--ref"), floodBase: flag("--flood-base"), floodRate: flag("--flood-rate"),
  minutes: flag("--minutes"), controlMinutes: flag("--control-minutes"), clients: flag("--clients"),
};

const SIZES = QUICK
  ? { ingestSeconds: 2, e2eSingle: 1_000, e2eBatch: 10_000, countSingle: 300, countBatchEvents: 5_000, consumerBatches: 4, queryRows: 100_000, latencySeconds: 0.5, budgetMin: 8 }
  : { ingestSeconds: 10, e2eSingle: 10_000, e2eBatch: 100_000, countSingle: 2_000, countBatchEvents: 20_000, consumerBatches: 20, queryRows: 1_000_000, latencySeconds: 2, budgetMin: 20 };
// A consumer batch as the pipeline makes it: 500-event POSTs pack into 2 messages of 250 events
// (src/queue.ts keeps a message under 96 KiB); the bench's transactions hold 20 such messages.
const CONSUMER = { eventsPerMessage: 250, messagesPerBatch: 20 };
const CONNECTIONS = 50;
const LIMIT = 100;

// Distinct client per request (`CF-Connecting-IP`, which local wrangler passes through): 50
// connections stand for 50+ browsers, as the per-client rate limiter sees them. One run keeps one client.
const MANY_CLIENTS = { "cf-connecting-ip": "bench-client-[<id>]" };

const R = { meta: {}, ingest: [], e2e: [], counts: [], consumer: [], query: null, cost: {}, notes: [] };

function log(...a) {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);
}

async function main() {
  const t0 = Date.now();
  // The memory phase's sustained loads come on top of the usual budget.
  const budgetMin = SIZES.budgetMin + PHASES.filter(runModule).reduce((n, p) => n + (p.module.budgetMinutes?.({ quick: QUICK, flags: FLAGS }) ?? 0), 0);
  const deadline = setTimeout(() => {
    console.error(`bench: over its ${budgetMin}-minute budget; stopping everything it started`);
    killAllSync();
    process.exit(3);
  }, budgetMin * 60_000);
  deadline.unref();
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      killAllSync();
      process.exit(130);
    });
  }
  process.on("exit", killAllSync);

  mkdirSync(STATE, { recursive: true });
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 22) throw new Error(`wrangler needs Node >= 22 (this is ${process.version}); run it as \`npm run bench\``);
  meta();
  R.meta.snapshot = makeSnapshot(FLAGS.ref);
  log(`code under test copied to ${path.relative(ROOT, SNAP)} (content hash ${R.meta.snapshot}); later edits to the working tree do not affect this run`);
  log(`mode ${QUICK ? "QUICK" : "FULL"}; raw SQLite under ${R.meta.sqliteNode}`);

  const trivialConfig = path.join(ROOT, "bench/trivial/wrangler.toml");
  if (run("e2e") || run("ingest") || run("query")) {
    const trivial = await Server.start("trivial", { persist: path.join(STATE, "trivial"), config: trivialConfig });
    await warm(trivial.url + "/", {});
    log(`trivial Worker on ${trivial.url}`);
    if (run("e2e") || run("ingest")) await phasePipeline(trivial);
    if (run("counts") || run("consumer") || run("fix")) await phaseProbe();
    if (run("query")) await phaseQuery(trivial);
    await trivial.stop();
  } else if (run("counts") || run("consumer") || run("fix")) await phaseProbe();
  if (run("quiet")) await phaseQuiet(trivialConfig);
  if (run("keycache")) await phaseKeyCache();
  for (const p of PHASES.filter(runModule)) R[p.name] = await p.module.run({ sizes: SIZES, quick: QUICK, log, flags: FLAGS, trivialConfig });

  await stopAll();
  R.meta.totalSeconds = (Date.now() - t0) / 1000;
  R.meta.loadavgAtEnd = os.loadavg().map((n) => n.toFixed(2)).join(" ");
  const md = [render(R), ...PHASES.filter((p) => R[p.name]).map((p) => p.module.render(R[p.name]).join("\n"))].join("\n");
  console.log(`\n${md}`);
  mkdirSync(path.join(ROOT, "bench/.results"), { recursive: true });
  const stamp = `${QUICK ? "quick" : "full"}${ONLY ? `-only-${ONLY.join("-")}` : ""}`;
  writeFileSync(path.join(ROOT, `bench/.results/${stamp}.json`), JSON.stringify(R, null, 2));
  writeFileSync(path.join(ROOT, `bench/.results/${stamp}.md`), md);
  if (!QUICK && !ONLY && !argv.includes("--no-write")) {
    writeBenchmarksMd(path.join(ROOT, "BENCHMARKS.md"), md);
    log("results written to BENCHMARKS.md and bench/.results/full.{md,json}");
  } else {
    log(`results written to bench/.results/${stamp}.{md,json}${QUICK || ONLY ? " (quick or partial runs leave BENCHMARKS.md alone)" : ""}`);
  }
  log(`done in ${R.meta.totalSeconds.toFixed(0)} s`);
}

function meta() {
  const version = (p) => {
    try {
      return JSON.parse(readFileSync(path.join(ROOT, "node_modules", p, "package.json"), "utf8")).version;
    } catch {
      return "?";
    }
  };
  let git = "?";
  try {
    git = execFileSync("git", ["rev-parse", "--short", `${FLAGS.ref ?? "HEAD"}^{commit}`], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = !FLAGS.ref && execFileSync("git", ["status", "--porcelain", "--", "src", "migrations", "wrangler.toml"], { cwd: ROOT, encoding: "utf8" }).trim();
    if (dirty) git += " + uncommitted changes in src/migrations/wrangler.toml";
  } catch {}
  const s = sqliteNode();
  Object.assign(R.meta, {
    mode: QUICK ? "quick" : "full",
    date: new Date().toISOString(),
    git,
    node: process.version,
    sqliteNode: `${s.node} (${s.version})`,
    sqlite: s.sqlite,
    wrangler: version("wrangler"),
    workerd: version("workerd"),
    autocannon: version("autocannon"),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavgAtStart: os.loadavg().map((n) => n.toFixed(2)).join(" "),
    sizes: SIZES,
    devCommand: devCommand().join(" "),
  });
}

// ---------------------------------------------------------------------------------------------
// Phase 1+2: the real Worker as `npm run dev` runs it, on a fresh local D1.

async function phasePipeline(trivial) {
  const persist = path.join(STATE, "real");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist);
  const real = await Server.start("real", { persist, config: snapConfig(), argv: devCommand() });
  log(`real Worker (\`${devCommand().join(" ")}\`) on ${real.url}, state in ${path.relative(ROOT, persist)}`);
  await warm(`${real.url}/api/event/?limit=1`, READ_HEADERS);
  const warmPost = await fetch(`${real.url}/api/event/`, { method: "POST", headers: WRITE_HEADERS, body: body(1, `warm-${randomUUID()}`) });
  if (warmPost.status !== 202) throw new Error(`real Worker refused a POST: ${warmPost.status} ${await warmPost.text()}`);
  await waitForCount(real.url, 1, { timeoutMs: 15_000 });

  if (run("e2e")) {
    // Issue 2: 10,000 single-event POSTs at 50 connections, first POST → all visible through GET.
    {
      const before = await countVisible(real.url);
      log(`e2e: ${SIZES.e2eSingle} single-event POSTs at ${CONNECTIONS} connections`);
      const t0 = Date.now();
      const r = await cannon(`${real.url}/api/event/`, {
        connections: CONNECTIONS, amount: SIZES.e2eSingle, method: "POST", headers: { ...WRITE_HEADERS, ...MANY_CLIENTS }, body: body(1), idReplacement: true,
      });
      const postedAt = Date.now();
      const accepted = r.statuses[202] ?? 0;
      const w = await waitForCount(real.url, before + accepted);
      R.e2e.push({
        label: `${SIZES.e2eSingle.toLocaleString("en")} single-event POSTs, ${CONNECTIONS} connections`,
        events: accepted, requests: r.requests, statuses: r.statuses, postSeconds: (postedAt - t0) / 1000,
        seconds: (w.at - t0) / 1000, reached: w.reached, visible: w.count - before, p50: r.p50, p99: r.p99,
      });
    }
    // Issue 4 item 2: 100,000 events in 500-event POSTs.
    {
      const before = await countVisible(real.url);
      log(`e2e: ${SIZES.e2eBatch} events in 500-event POSTs, 10 at a time`);
      const t0 = Date.now();
      const r = await postBatches(real.url, { total: SIZES.e2eBatch, perRequest: 500, concurrency: 10, runId: `e2e-${randomUUID()}`, headers: { "cf-connecting-ip": "bench-e2e" }, clientPerRequest: true });
      const postedAt = Date.now();
      const w = await waitForCount(real.url, before + r.accepted);
      R.e2e.push({
        label: `${SIZES.e2eBatch.toLocaleString("en")} events in 500-event POSTs, 10 connections`,
        events: r.accepted, requests: r.requests, statuses: r.statuses, retries: r.retries, postSeconds: (postedAt - t0) / 1000,
        seconds: (w.at - t0) / 1000, reached: w.reached, visible: w.count - before, p50: r.p50, p99: r.p99,
      });
    }
  }

  if (run("ingest")) {
    const D = SIZES.ingestSeconds;
    const loads = [
      { server: trivial, key: "trivial", label: "trivial Worker (`return new Response(\"ok\")`), same POST", n: 1, headers: { ...WRITE_HEADERS, ...MANY_CLIENTS }, url: `${trivial.url}/api/event/` },
      { server: real, key: "single", label: "single-event POST, a client per request", n: 1, headers: { ...WRITE_HEADERS, ...MANY_CLIENTS } },
      { server: real, key: "single-pool", label: "single-event POST, 1,000 clients taking turns", n: 1, headers: WRITE_HEADERS, clientPool: 1000 },
      { server: real, key: "single-1client", label: "single-event POST, one client (rate limiter on)", n: 1, headers: { ...WRITE_HEADERS, "cf-connecting-ip": `bench-one-${randomUUID()}` } },
      { server: real, key: "batch100", label: "100-event POST", n: 100, headers: { ...WRITE_HEADERS, ...MANY_CLIENTS } },
      { server: real, key: "batch500", label: "500-event POST", n: 500, headers: { ...WRITE_HEADERS, ...MANY_CLIENTS } },
    ];
    for (const l of loads) {
      log(`ingest: ${l.label}, ${CONNECTIONS} connections, ${D} s`);
      const before = l.server === real ? await countVisible(real.url) : 0;
      const m = await measureLoad(l.server, l.label, {
        url: l.url, connections: CONNECTIONS, duration: D, method: "POST", headers: l.headers, body: body(l.n), idReplacement: true, clientPool: l.clientPool,
      });
      const accepted = (m.statuses[202] ?? 0) * l.n;
      const row = { key: l.key, label: l.label, perRequest: l.n, seconds: m.seconds, requests: m.requests, reqPerSec: m.reqPerSec,
        acceptedReqPerSec: (l.server === real ? (m.statuses[202] ?? 0) : (m.statuses[200] ?? 0)) / m.seconds,
        eventsPerSec: l.server === real ? accepted / m.seconds : m.reqPerSec, accepted, p50: m.p50, p99: m.p99, statuses: m.statuses,
        errors: m.errors, timeouts: m.timeouts, cpuLoad: m.cpuLoad, cpuPerEventUs: (m.cpuLoad / Math.max(1, l.server === real ? accepted : m.requests)) * 1e6,
        proxyPerEventUs: (m.cpuProxy / Math.max(1, l.server === real ? accepted : m.requests)) * 1e6, runtimePerEventUs: (m.cpuRuntime / Math.max(1, l.server === real ? accepted : m.requests)) * 1e6 };
      if (l.server === real) {
        const t = Date.now();
        const w = await waitForCount(real.url, before + accepted);
        const cpuDrained = real.cpuSeconds();
        Object.assign(row, {
          drainSeconds: (w.at - t) / 1000, drained: w.reached, visible: w.count - before,
          cpuTotal: cpuDrained - (m.cpuAtEnd - m.cpuLoad), cpuTotalPerEventUs: ((cpuDrained - (m.cpuAtEnd - m.cpuLoad)) / Math.max(1, accepted)) * 1e6,
          storedPerSec: (w.count - before) / ((w.at - t) / 1000 + m.seconds),
        });
        // Requests in flight when autocannon stopped were accepted too (no response counted): let them land.
        row.inFlightAccepted = (await settle(real.url)) - w.count;
      }
      row.rssMiB = l.server.rssMiB();
      R.ingest.push(row);
    }
  }
  await real.stop();
  const [file] = d1Files(persist);
  const info = await sqliteTask("info", { file });
  R.cost.pipeline = { ...info, bytesPerEvent: info.bytes / Math.max(1, info.rows) };
  R.meta.appId = info.appId;
}

// ---------------------------------------------------------------------------------------------
// Phase 2 (counts) + 3 (consumer): the probe, i.e. the real Worker with counting bindings.

async function phaseProbe() {
  const config = writeProbeConfig();
  const persist = path.join(STATE, "probe");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config });
  let probe = await Server.start("probe", { persist, config, argv: devCommand() });
  log(`probe (real Worker, counting bindings) on ${probe.url}`);
  const counters = async (reset = false) => (await fetch(`${probe.url}/__bench/counters`, { method: reset ? "POST" : "GET" })).json();

  if (run("counts")) {
    for (const n of [1, 100, 500]) {
      await counters(true);
      const before = await countVisible(probe.url);
      let accepted;
      if (n === 1) {
        const r = await cannon(`${probe.url}/api/event/`, { connections: CONNECTIONS, amount: SIZES.countSingle, method: "POST", headers: { ...WRITE_HEADERS, ...MANY_CLIENTS }, body: body(1), idReplacement: true });
        accepted = r.statuses[202] ?? 0;
      } else {
        const r = await postBatches(probe.url, { total: SIZES.countBatchEvents, perRequest: n, concurrency: 10, runId: `count-${n}-${randomUUID()}`, clientPerRequest: true });
        accepted = r.accepted;
      }
      const w = await waitForCount(probe.url, before + accepted);
      const c = await counters();
      const sorted = [...c.consumerBatchRows].sort((a, b) => a - b);
      R.counts.push({
        perRequest: n, events: accepted, visible: w.count - before, messages: c.messagesSent, sendBatchCalls: c.sendBatchCalls,
        queueBatches: c.queueBatches, d1Batches: c.d1Batches, d1Statements: c.d1BatchStatements + c.d1SingleStatements,
        messagesPer1000: (c.messagesSent / accepted) * 1000, statementsPer1000: ((c.d1BatchStatements + c.d1SingleStatements) / accepted) * 1000,
        batchRows: { min: sorted[0], p50: pct(sorted, 50), max: sorted[sorted.length - 1] },
      });
      log(`counts: ${n}-event POSTs: ${c.messagesSent} messages, ${c.d1BatchStatements + c.d1SingleStatements} D1 statements for ${accepted} events`);
    }
  }

  if (run("counts")) {
    // Where the ingest CPU goes: the Worker's own parse/validate/pack code on the 500-event body, inside workerd.
    const rounds = QUICK ? 40 : 200;
    const text = body(500, "bench-profile-session");
    R.profile = [];
    for (const part of ["parse", "validate", "pack"]) {
      const c0 = probe.cpuByRole().runtime;
      const out = await (await fetch(`${probe.url}/__bench/profile?part=${part}&rounds=${rounds}`, { method: "POST", body: text })).json();
      const c1 = probe.cpuByRole().runtime;
      R.profile.push({ part, events: out.events, usPerEvent: ((c1 - c0) / out.events) * 1e6 });
    }
    log(`profile: ${R.profile.map((p) => `${p.part} ${p.usPerEvent.toFixed(1)} µs/event`).join(", ")}`);

    // Ablation of the single-event POST: the same load with the rate limiter, then also the queue, as no-ops.
    R.ablation = [];
    const beforeAblation = await countVisible(probe.url);
    let queued = 0;
    for (const [n, stub, label] of [
      [1, "", "single-event POST, probe, all bindings real"],
      [1, "limiter", "single-event POST, rate limiter a no-op"],
      [1, "limiter,queue", "single-event POST, rate limiter and queue send no-ops"],
      [500, "", "500-event POST, probe, all bindings real"],
      [500, "queue", "500-event POST, queue send a no-op (no queue, no consumer)"],
    ]) {
      log(`ablation: ${label}, ${SIZES.ingestSeconds} s`);
      const m = await measureLoad(probe, label, { connections: CONNECTIONS, duration: SIZES.ingestSeconds, method: "POST", headers: { ...WRITE_HEADERS, ...MANY_CLIENTS, ...(stub ? { "x-bench-stub": stub } : {}) }, body: body(n), idReplacement: true });
      const ok = (m.statuses[202] ?? 0) * n;
      if (!stub.includes("queue")) queued += ok;
      R.ablation.push({ label, perRequest: n, reqPerSec: m.reqPerSec, acceptedReqPerSec: (m.statuses[202] ?? 0) / m.seconds, eventsPerSec: ok / m.seconds, p50: m.p50, p99: m.p99, statuses: m.statuses, proxyPerEventUs: (m.cpuProxy / Math.max(1, ok)) * 1e6, runtimePerEventUs: (m.cpuRuntime / Math.max(1, ok)) * 1e6 });
      if (!stub.includes("queue")) {
        await waitForCount(probe.url, beforeAblation + queued);
        await settle(probe.url);
      }
    }
    // Let the ablation's queued events drain before the consumer bench.
  }

  if (run("consumer")) {
    // The same rows for every writer: consumer batches of 20 messages × 250 events.
    const batches = [];
    const receivedAt = Date.now() * 1000;
    let seq = 0;
    for (let b = 0; b < SIZES.consumerBatches; b++) {
      const messages = [];
      for (let m = 0; m < CONSUMER.messagesPerBatch; m++) {
        const events = [];
        for (let e = 0; e < CONSUMER.eventsPerMessage; e++, seq++) {
          events.push({
            event_id: randomUUID(), session_id: `s-${Math.floor(seq / 20)}`, category: ["page interaction", "navigation", "form", "media", "error"][seq % 5],
            name: `name ${seq % 50}`, data: `{"host":"www.xxxxx.com","path":"/p/${seq % 500}","element":"chat bubble"}`, timestamp: 1609492527243860 + seq * 1000,
          });
        }
        messages.push({ kind: "events", app: R.meta.appId ?? "app_dev", received_at: receivedAt, events });
      }
      batches.push(messages);
    }
    const messagesFile = path.join(STATE, "consumer-messages.json");
    writeFileSync(messagesFile, JSON.stringify({ batches }));
    const rowsPerTxn = CONSUMER.eventsPerMessage * CONSUMER.messagesPerBatch;
    const total = rowsPerTxn * batches.length;
    const variants = [
      ["real", "the queue() handler, as in src/"],
      ["values12", "bench prototype: 12-row INSERT…VALUES (≤ 100 parameters each), insertAll()'s other statements, one D1 batch"],
      ["json_each", "bench prototype: INSERT…SELECT FROM json_each(?) per 512 KiB of rows, insertAll()'s other statements, one D1 batch"],
    ];
    for (const [variant, label] of variants) {
      await fetch(`${probe.url}/__bench/reset-events`, { method: "POST" }).then((r) => r.arrayBuffer());
      log(`consumer: ${variant}, ${total} rows in transactions of ${rowsPerTxn}`);
      let inWorkerMs = 0;
      let retried = 0;
      let shape;
      const t0 = performance.now();
      for (const messages of batches) {
        const res = await fetch(`${probe.url}/__bench/consume?variant=${variant}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages }) });
        const out = await res.json();
        if (!res.ok) throw new Error(`consume ${variant}: ${res.status} ${JSON.stringify(out)}`);
        inWorkerMs += out.ms;
        retried += out.retried;
        shape = `${out.statements} (${out.shape})`;
      }
      const seconds = (performance.now() - t0) / 1000;
      R.consumer.push({ writer: `workerd + D1: ${label}`, variant, rows: total, rowsPerTxn, seconds, rowsPerSec: total / seconds, inWorkerRowsPerSec: total / (inWorkerMs / 1000), retried, statementsPerTxn: shape });
    }
    const around = await (await fetch(`${probe.url}/__bench/consumer-around`)).json();
    R.consumerAround = around;
    const extra = around.before.length + around.after.length ? ` + insertAll()'s ${around.before.length + around.after.length} other statement(s), per transaction` : "";
    for (const [variant, label] of [
      ["single", "one prepared single-row INSERT, reused (bare insert ceiling)"],
      ["values12", `12-row INSERT…VALUES${extra}`],
      ["json_each", `INSERT…SELECT FROM json_each(?) per 512 KiB${extra}`],
      ["json_each_bare", "INSERT…SELECT FROM json_each(?) per 512 KiB, nothing else (what the other statements cost)"],
    ]) {
      log(`consumer: raw SQLite ${variant}`);
      const r = await sqliteTask("insert", { messagesFile, variant, around, migrationsDir: path.join(SNAP, "migrations") });
      R.consumer.push({ writer: `node:sqlite: ${label}`, variant: `sqlite_${variant}`, rows: r.rows, rowsPerTxn, seconds: r.seconds, rowsPerSec: r.rowsPerSec, stored: r.stored });
    }
  }
  if (run("fix")) {
    // The levers inside the pipeline, same Worker, same local Queue and D1, through the probe:
    // its queue() switched at run time between the real handler and the two prototype inserts,
    // then the real handler with the events queue's max_batch_timeout at 0 instead of wrangler.toml's value.
    R.fix = [];
    const timeoutNow = /max_batch_timeout\s*=\s*([\d.]+)/.exec(readFileSync(snapConfig(), "utf8").slice(readFileSync(snapConfig(), "utf8").indexOf("[[queues.consumers]]")))?.[1] ?? "?";
    for (const mode of ["real", "values12", "json_each"]) R.fix.push(await fixRun(probe, mode, `max_batch_timeout = ${timeoutNow}`, true));
    await probe.stop();
    const config0 = writeDerivedConfig({ file: path.join(SNAP, "bench/probe/wrangler-timeout0.toml"), main: "bench/probe/index.js", nameSuffix: "bench-probe", transform: withBatchTimeout(0) });
    probe = await Server.start("probe-timeout0", { persist, config: config0, argv: devCommand() });
    for (const mode of ["real"]) R.fix.push(await fixRun(probe, mode, "max_batch_timeout = 0", false));
  }
  await probe.stop();
}

/** One row of the fix table: e2e for 10,000 and for the full count of events in 500-event POSTs, and optionally a 500-event load. */
async function fixRun(probe, mode, settings, withLoad) {
  await fetch(`${probe.url}/__bench/consumer-mode?mode=${mode}`, { method: "POST" }).then((r) => r.arrayBuffer());
  const row = { mode, settings };
  for (const [key, total] of [["small", Math.min(10_000, SIZES.e2eBatch)], ["big", SIZES.e2eBatch]]) {
    if (key === "big" && total === Math.min(10_000, SIZES.e2eBatch)) continue;
    const before = await countVisible(probe.url);
    log(`fix: ${mode}, ${settings}: e2e ${total} events in 500-event POSTs`);
    const t0 = Date.now();
    const r = await postBatches(probe.url, { total, perRequest: 500, concurrency: 10, runId: `fix-${mode}-${randomUUID()}`, clientPerRequest: true });
    const w = await waitForCount(probe.url, before + r.accepted);
    row[key] = { events: w.count - before, seconds: (w.at - t0) / 1000, reached: w.reached, perSec: (w.count - before) / ((w.at - t0) / 1000) };
  }
  if (withLoad) {
    const before = await countVisible(probe.url);
    log(`fix: ${mode}, ${settings}: 500-event POSTs, ${CONNECTIONS} connections, ${SIZES.ingestSeconds} s`);
    const m = await measureLoad(probe, "", { connections: CONNECTIONS, duration: SIZES.ingestSeconds, method: "POST", headers: { ...WRITE_HEADERS, ...MANY_CLIENTS }, body: body(500), idReplacement: true });
    const accepted = (m.statuses[202] ?? 0) * 500;
    const t = Date.now();
    const w = await waitForCount(probe.url, before + accepted);
    const cpuAll = probe.cpuByRole();
    Object.assign(row, {
      ingestPerSec: accepted / m.seconds, p50: m.p50, p99: m.p99, runtimePerEventUs: (m.cpuRuntime / Math.max(1, accepted)) * 1e6,
      totalPerEventUs: ((cpuAll.proxy + cpuAll.runtime - (m.cpuAtEnd - m.cpuLoad)) / Math.max(1, accepted)) * 1e6,
      storedPerSec: (w.count - before) / (m.seconds + (w.at - t) / 1000), drained: w.reached,
    });
    await settle(probe.url);
  }
  await fetch(`${probe.url}/__bench/consumer-mode?mode=real`, { method: "POST" }).then((r) => r.arrayBuffer());
  return row;
}

// ---------------------------------------------------------------------------------------------
// Phase 4: queries at 1,000,000 events.

function migrationsHash() {
  const dir = path.join(SNAP, "migrations");
  const h = createHash("sha256");
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) h.update(f).update(readFileSync(path.join(dir, f)));
  h.update(readFileSync(path.join(ROOT, "bench/sqlite-tasks.cjs")));
  return h.digest("hex").slice(0, 16);
}

/**
 * The million rows, loaded the fast way: apply the migrations up to the one that creates `events`,
 * write the rows straight into the local D1 SQLite file with node:sqlite (wrangler not running),
 * then apply the remaining migrations and the dev seed as `npm run dev` would, so any backfill in
 * later migrations (e.g. count rollups) covers them as it would have for events stored before it.
 */
async function queryDataset() {
  const rows = SIZES.queryRows;
  const dir = path.join(STATE, `query-${rows}`);
  const markerFile = path.join(dir, "dataset.json");
  const hash = migrationsHash();
  const appId = R.meta.appId ?? "app_dev";
  if (!argv.includes("--rebuild") && existsSync(markerFile)) {
    const marker = JSON.parse(readFileSync(markerFile, "utf8"));
    if (marker.rows === rows && marker.hash === hash && marker.appId === appId && d1Files(dir).length === 1) {
      log(`query: reusing the ${rows}-event data set in ${path.relative(ROOT, dir)} (built ${marker.builtAt}, load ${marker.loadSeconds} s)`);
      return { dir, file: d1Files(dir)[0], marker, reused: true };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const migDir = path.join(SNAP, "migrations");
  const all = readdirSync(migDir).filter((f) => f.endsWith(".sql")).sort();
  const firstWithEvents = all.findIndex((f) => /CREATE TABLE [`"]?events[`"]?/i.test(readFileSync(path.join(migDir, f), "utf8")));
  const stage = path.join(STATE, "migrations-stage1");
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  for (const f of all.slice(0, firstWithEvents + 1)) copyFileSync(path.join(migDir, f), path.join(stage, f));
  const stageConfig = writeDerivedConfig({ file: path.join(STATE, "stage1-wrangler.toml"), main: "src/index.ts", nameSuffix: "bench-stage1", migrationsDir: stage });
  const t0 = Date.now();
  execFileSync("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", dir, "--config", stageConfig], { cwd: ROOT, env: childEnv({ CI: "true" }), stdio: ["ignore", "pipe", "pipe"] });
  const [file] = d1Files(dir);
  log(`query: loading ${rows} events into ${path.relative(ROOT, file)} with node:sqlite`);
  const load = await sqliteTask("load", { file, rows, appId, seed: 42 });
  const t1 = Date.now();
  prepareLocal(dir); // the remaining migrations + dev seed, exactly as `npm run dev`
  const migrateSeconds = (Date.now() - t1) / 1000;
  const marker = { rows, hash, appId, builtAt: new Date().toISOString(), loadSeconds: load.seconds, migrateSeconds, totalSeconds: (Date.now() - t0) / 1000, appliedAfterLoad: all.slice(firstWithEvents + 1) };
  writeFileSync(markerFile, JSON.stringify(marker, null, 2));
  return { dir, file, marker, reused: false };
}

function shapesFor(v, rows) {
  const q = (o) => new URLSearchParams(Object.entries(o).filter(([, x]) => x !== undefined)).toString();
  const range = { timestamp_after: v.day, timestamp_before: v.nextDay };
  const filters = [
    ["none", {}],
    ["session", { session_id: v.sessionId }],
    ["category", { category: v.category }],
    ["name", { name: v.name }],
    ["category+name", { category: v.category, name: v.name }],
  ];
  const shapes = [];
  for (const [name, f] of filters) {
    for (const withRange of [false, true]) {
      const params = { ...f, ...(withRange ? range : {}), limit: LIMIT };
      const label = `${name}${withRange ? " + 1-day range" : ""}`;
      shapes.push({ name: `${label}`, mode: "offset", offset: 0, query: q(params) });
      shapes.push({ name: `${label}, cursor page 2`, mode: "cursor", query: q({ ...params, pagination: "cursor" }) });
    }
  }
  const deep = Math.min(100_000, Math.floor(rows / 10));
  shapes.push({ name: `none, offset ${deep.toLocaleString("en")}`, mode: "offset", offset: deep, query: q({ limit: LIMIT, offset: deep }) });
  shapes.push({ name: `category, offset ${deep.toLocaleString("en")}`, mode: "offset", offset: deep, query: q({ category: v.category, limit: LIMIT, offset: deep }) });
  return shapes;
}

async function phaseQuery(trivial) {
  const ds = await queryDataset();
  const rows = SIZES.queryRows;
  const v = await sqliteTask("probeValues", { file: ds.file, rows });
  const shapes = shapesFor(v, rows);
  const real = await Server.start("real-query", { persist: ds.dir, config: snapConfig(), argv: devCommand() });
  log(`query: real Worker on ${real.url} over ${rows} events`);
  // Resolve each cursor shape to its second page (a real `next` link), and warm every shape.
  for (const s of shapes) {
    const url = `${real.url}/api/event/?${s.query}`;
    const res = await fetch(url, { headers: READ_HEADERS });
    const page = await res.json();
    if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(page)}`);
    if (s.mode === "cursor") {
      if (page.next) {
        s.query = new URL(page.next).search.slice(1);
        const p2 = await (await fetch(`${real.url}/api/event/?${s.query}`, { headers: READ_HEADERS })).json();
        s.results = p2.results.length;
      } else {
        // Fewer matches than one page (a session holds ~20 events): page 1 is the only page.
        s.name = s.name.replace("page 2", "page 1 (only page)");
        s.results = page.results.length;
      }
    } else {
      s.results = page.results.length;
      s.count = page.count;
    }
  }
  const D = SIZES.latencySeconds;
  const PASSES = 3;
  log(`query: latency of ${shapes.length} shapes and the trivial Worker, 1 connection, ${PASSES} interleaved passes of ${(D / PASSES).toFixed(2)} s each`);
  // Interleaved passes, so a burst of foreign load on the shared machine hits every shape alike.
  const trivTimes = [];
  const statusesOf = new Map(shapes.map((s) => [s, {}]));
  const timesOf = new Map(shapes.map((s) => [s, []]));
  for (let pass = 0; pass < PASSES; pass++) {
    trivTimes.push(...(await latencyLoop(`${trivial.url}/`, { seconds: D / PASSES })).times);
    for (const s of shapes) {
      const r = await latencyLoop(`${real.url}/api/event/?${s.query}`, { headers: READ_HEADERS, seconds: D / PASSES });
      timesOf.get(s).push(...r.times);
      for (const [k, v] of Object.entries(r.statuses)) statusesOf.get(s)[k] = (statusesOf.get(s)[k] ?? 0) + v;
    }
  }
  const triv = summarize(trivTimes);
  for (const s of shapes) {
    const t = summarize(timesOf.get(s));
    Object.assign(s, { p50: t.p50, p99: t.p99, n: t.n, statuses: statusesOf.get(s) });
    if (Object.keys(s.statuses).some((k) => k !== "200")) throw new Error(`shape ${s.name}: statuses ${JSON.stringify(s.statuses)}`);
  }
  // The same at 10 connections for two shapes: throughput under concurrency.
  const conc = [];
  for (const s of [shapes[0], shapes[4]]) {
    const r = await cannon(`${real.url}/api/event/?${s.query}`, { connections: 10, duration: D, headers: READ_HEADERS });
    conc.push({ name: s.name, reqPerSec: r.reqPerSec, p50: r.p50, p99: r.p99 });
  }
  const trivConc = await cannon(`${trivial.url}/`, { connections: 10, duration: D });
  await real.stop();

  // rows_read: the probe runs the same request through the real app and D1 reports each statement.
  const config = writeProbeConfig();
  const probe = await Server.start("probe-query", { persist: ds.dir, config, argv: devCommand() });
  for (const s of shapes) {
    const res = await fetch(`${probe.url}/api/event/?${s.query}`, { headers: { ...READ_HEADERS, "x-bench-probe": "1" } });
    const out = await res.json();
    if (out.status !== 200) throw new Error(`probe ${s.name}: ${out.status} ${out.response}`);
    // The statements on events and its rollups (a key lookup on a cold isolate is not the query's cost).
    s.statements = out.statements.filter((x) => !/api_keys|applications/.test(x.sql));
    s.rowsRead = s.statements.reduce((n, x) => n + x.rows_read, 0);
    s.rowsReadList = s.statements.filter((x) => /order by/i.test(x.sql)).reduce((n, x) => n + x.rows_read, 0);
    s.rowsReadCount = s.rowsRead - s.rowsReadList;
  }
  // Where a query's time goes, in one instance: the runtime alone, the statements on D1 alone, the whole app.
  const picks = [0, shapes.findIndex((s) => s.name === "category+name + 1-day range"), shapes.length - 2].filter((i) => i >= 0);
  await fetch(`${probe.url}/__bench/d1/register`, { method: "POST", body: JSON.stringify({ shapes: shapes.map((s) => s.statements.map(({ sql, params }) => ({ sql, params }))) }) });
  const split = { ok: [], d1: new Map(picks.map((i) => [i, []])), d1batch: new Map(picks.map((i) => [i, []])), app: new Map(picks.map((i) => [i, []])) };
  const slice = Math.max(0.2, D / 3);
  const timed = async (url, opts) => {
    const r = await latencyLoop(url, opts);
    if (Object.keys(r.statuses).some((k) => k !== "200")) throw new Error(`GET ${url}: statuses ${JSON.stringify(r.statuses)}`);
    return r;
  };
  for (let pass = 0; pass < 3; pass++) {
    split.ok.push(...(await timed(`${probe.url}/__bench/ok`, { seconds: slice })).times);
    for (const i of picks) {
      split.d1.get(i).push(...(await timed(`${probe.url}/__bench/d1?i=${i}`, { seconds: slice })).times);
      split.d1batch.get(i).push(...(await timed(`${probe.url}/__bench/d1?i=${i}&batch=1`, { seconds: slice })).times);
      split.app.get(i).push(...(await timed(`${probe.url}/api/event/?${shapes[i].query}`, { headers: READ_HEADERS, seconds: slice })).times);
    }
  }
  for (const [what, list] of [["ok", [split.ok]], ["d1", [...split.d1.values()]], ["d1batch", [...split.d1batch.values()]], ["app", [...split.app.values()]]]) {
    if (list.some((t) => t.length === 0)) throw new Error(`query split: no ${what} timings`);
  }
  R.querySplit = { ok: summarize(split.ok), shapes: picks.map((i) => ({ name: shapes[i].name, statements: shapes[i].statements.length, d1: summarize(split.d1.get(i)), d1batch: summarize(split.d1batch.get(i)), app: summarize(split.app.get(i)) })) };
  await probe.stop();
  log("query: the same SQL on raw SQLite");
  const raw = await sqliteTask("query", { file: ds.file, shapes: shapes.map((s) => ({ name: s.name, statements: s.statements.map(({ sql, params }) => ({ sql, params })) })), iterations: QUICK ? 50 : 300, maxMs: QUICK ? 300 : 1500 });
  for (const s of shapes) {
    const r = raw.find((x) => x.name === s.name);
    Object.assign(s, { rawP50: r.p50, rawP99: r.p99, plans: r.plans });
  }
  const info = await sqliteTask("info", { file: ds.file });
  R.cost.query = { ...info, bytesPerEvent: info.bytes / info.rows };
  R.query = { rows, dataset: ds.marker, reused: ds.reused, values: v, trivialP50: triv.p50, trivialP99: triv.p99, trivialN: triv.n, passes: PASSES, shapes, concurrency: { shapes: conc, trivial: { reqPerSec: trivConc.reqPerSec, p50: trivConc.p50, p99: trivConc.p99 } } };
}

// ---------------------------------------------------------------------------------------------
// Phase: the same single-event ingest with wrangler's per-request log lines off (--log-level warn).

async function phaseQuiet(trivialConfig) {
  const persist = path.join(STATE, "real");
  prepareLocal(persist); // as `npm run dev` does on every start: pending migrations, the (idempotent) seed
  const extra = ["--log-level", "warn"];
  const trivial = await Server.start("trivial-quiet", { persist: path.join(STATE, "trivial"), config: trivialConfig, extra });
  const real = await Server.start("real-quiet", { persist, config: snapConfig(), argv: devCommand(), extra });
  await warm(`${real.url}/api/event/?limit=1`, READ_HEADERS);
  const D = SIZES.ingestSeconds;
  for (const [server, label, url] of [
    [trivial, "trivial Worker, --log-level warn", `${trivial.url}/api/event/`],
    [real, "single-event POST, a client per request, --log-level warn", undefined],
  ]) {
    log(`quiet: ${label}, ${D} s`);
    const m = await measureLoad(server, label, { url, connections: CONNECTIONS, duration: D, method: "POST", headers: { ...WRITE_HEADERS, ...MANY_CLIENTS }, body: body(1), idReplacement: true });
    const ok = (m.statuses[202] ?? 0) + (m.statuses[200] ?? 0);
    R.ingest.push({ key: server === real ? "single-quiet" : "trivial-quiet", label, perRequest: 1, seconds: m.seconds, requests: m.requests, reqPerSec: m.reqPerSec, acceptedReqPerSec: ok / m.seconds, eventsPerSec: ok / m.seconds, accepted: ok, p50: m.p50, p99: m.p99, statuses: m.statuses, errors: m.errors, cpuLoad: m.cpuLoad, cpuPerEventUs: (m.cpuLoad / Math.max(1, ok)) * 1e6, proxyPerEventUs: (m.cpuProxy / Math.max(1, ok)) * 1e6, runtimePerEventUs: (m.cpuRuntime / Math.max(1, ok)) * 1e6 });
  }
  await real.stop();
  await trivial.stop();
}

// ---------------------------------------------------------------------------------------------
// Phase: single-event POSTs with the per-isolate key cache (KEY_CACHE_SECONDS=60, the default)
// and without it (KEY_CACHE_SECONDS=0: one D1 read per request), interleaved in two passes.

async function phaseKeyCache() {
  const persist = path.join(STATE, "real");
  prepareLocal(persist); // as `npm run dev` does on every start: pending migrations, the (idempotent) seed
  const persistNoCache = path.join(STATE, "real-nokeycache");
  prepareLocal(persistNoCache);
  const cached = await Server.start("real-keycache", { persist, config: snapConfig(), argv: devCommand() });
  const uncached = await Server.start("real-nokeycache", {
    persist: persistNoCache,
    config: snapConfig(),
    argv: devCommand(),
    extra: ["--var", "KEY_CACHE_SECONDS:0"],
  });
  for (const s of [cached, uncached]) await warm(`${s.url}/api/event/?limit=1`, READ_HEADERS);
  const D = SIZES.ingestSeconds;
  const totals = new Map();
  for (let pass = 0; pass < 2; pass++) {
    for (const [server, label] of [
      [cached, "single-event POST, key cache on (60 s, default)"],
      [uncached, "single-event POST, key cache off (D1 read per request)"],
    ]) {
      log(`keycache: ${label}, pass ${pass + 1}, ${D} s`);
      const m = await measureLoad(server, label, { connections: CONNECTIONS, duration: D, method: "POST", headers: { ...WRITE_HEADERS, ...MANY_CLIENTS }, body: body(1), idReplacement: true });
      const ok = m.statuses[202] ?? 0;
      const t = totals.get(label) ?? { label, seconds: 0, accepted: 0, requests: 0, cpu: 0, p50: [], p99: [] };
      t.seconds += m.seconds;
      t.accepted += ok;
      t.requests += m.requests;
      t.cpu += m.cpuLoad;
      t.p50.push(m.p50);
      t.p99.push(m.p99);
      totals.set(label, t);
    }
  }
  R.keyCache = [...totals.values()].map((t) => ({
    label: t.label,
    acceptedReqPerSec: t.accepted / t.seconds,
    p50: Math.max(...t.p50),
    p99: Math.max(...t.p99),
    cpuPerEventUs: (t.cpu / Math.max(1, t.accepted)) * 1e6,
  }));
  await uncached.stop();
  await cached.stop();
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
