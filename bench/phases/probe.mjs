// Phases `counts`, `consumer` and `fix` (issues 2–4): the probe, i.e. the real Worker with counting
// bindings — queue messages and D1 statements per event, the consumer's insert shapes against raw
// SQLite, and the levers inside the pipeline.
import { randomUUID } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import {
  body,
  CONNECTIONS,
  cannon,
  countVisible,
  MANY_CLIENTS,
  measureLoad,
  pct,
  postBatches,
  settle,
  WRITE_HEADERS,
  waitForCount,
} from "../lib/load.mjs";
import {
  devCommand,
  prepareLocal,
  Server,
  SNAP,
  STATE,
  snapConfig,
  withBatchTimeout,
  writeDerivedConfig,
  writeProbeConfig,
} from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";

// A consumer batch as the pipeline makes it: 500-event POSTs pack into 2 messages of 250 events
// (src/ingest/messages.ts keeps a message under 96 KiB); the bench's transactions hold 20 such messages.
const CONSUMER = { eventsPerMessage: 250, messagesPerBatch: 20 };

export async function run(ctx) {
  const { sizes: SIZES, quick: QUICK, log, R, selected } = ctx;
  const config = writeProbeConfig();
  const persist = path.join(STATE, "probe");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config });
  let probe = await Server.start("probe", { persist, config, argv: devCommand() });
  log(`probe (real Worker, counting bindings) on ${probe.url}`);
  const counters = async (reset = false) =>
    (await fetch(`${probe.url}/__bench/counters`, { method: reset ? "POST" : "GET" })).json();

  if (selected("counts")) {
    for (const n of [1, 100, 500]) {
      await counters(true);
      const before = await countVisible(probe.url);
      let accepted;
      if (n === 1) {
        const r = await cannon(`${probe.url}/api/event/`, {
          connections: CONNECTIONS,
          amount: SIZES.countSingle,
          method: "POST",
          headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
          body: body(1),
          idReplacement: true,
        });
        accepted = r.statuses[202] ?? 0;
      } else {
        const r = await postBatches(probe.url, {
          total: SIZES.countBatchEvents,
          perRequest: n,
          concurrency: 10,
          runId: `count-${n}-${randomUUID()}`,
          clientPerRequest: true,
        });
        accepted = r.accepted;
      }
      const w = await waitForCount(probe.url, before + accepted);
      const c = await counters();
      const sorted = [...c.consumerBatchRows].sort((a, b) => a - b);
      R.counts.push({
        perRequest: n,
        events: accepted,
        visible: w.count - before,
        messages: c.messagesSent,
        sendBatchCalls: c.sendBatchCalls,
        queueBatches: c.queueBatches,
        d1Batches: c.d1Batches,
        d1Statements: c.d1BatchStatements + c.d1SingleStatements,
        messagesPer1000: (c.messagesSent / accepted) * 1000,
        statementsPer1000: ((c.d1BatchStatements + c.d1SingleStatements) / accepted) * 1000,
        batchRows: { min: sorted[0], p50: pct(sorted, 50), max: sorted[sorted.length - 1] },
      });
      log(
        `counts: ${n}-event POSTs: ${c.messagesSent} messages, ${c.d1BatchStatements + c.d1SingleStatements} D1 statements for ${accepted} events`,
      );
    }
  }

  if (selected("counts")) {
    // Where the ingest CPU goes: the Worker's own parse/validate/pack code on the 500-event body, inside workerd.
    const rounds = QUICK ? 40 : 200;
    const text = body(500, "bench-profile-session");
    R.profile = [];
    for (const part of ["parse", "validate", "pack"]) {
      const c0 = probe.cpuByRole().runtime;
      const out = await (
        await fetch(`${probe.url}/__bench/profile?part=${part}&rounds=${rounds}`, { method: "POST", body: text })
      ).json();
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
      const m = await measureLoad(probe, label, {
        connections: CONNECTIONS,
        duration: SIZES.ingestSeconds,
        method: "POST",
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS, ...(stub ? { "x-bench-stub": stub } : {}) },
        body: body(n),
        idReplacement: true,
      });
      const ok = (m.statuses[202] ?? 0) * n;
      if (!stub.includes("queue")) queued += ok;
      R.ablation.push({
        label,
        perRequest: n,
        reqPerSec: m.reqPerSec,
        acceptedReqPerSec: (m.statuses[202] ?? 0) / m.seconds,
        eventsPerSec: ok / m.seconds,
        p50: m.p50,
        p99: m.p99,
        statuses: m.statuses,
        proxyPerEventUs: (m.cpuProxy / Math.max(1, ok)) * 1e6,
        runtimePerEventUs: (m.cpuRuntime / Math.max(1, ok)) * 1e6,
      });
      if (!stub.includes("queue")) {
        await waitForCount(probe.url, beforeAblation + queued);
        await settle(probe.url);
      }
    }
    // Let the ablation's queued events drain before the consumer bench.
  }

  if (selected("consumer")) {
    // The same rows for every writer: consumer batches of 20 messages × 250 events.
    const batches = consumerBatches(SIZES.consumerBatches, R.meta.appId ?? "app_dev");
    const messagesFile = path.join(STATE, "consumer-messages.json");
    writeFileSync(messagesFile, JSON.stringify({ batches }));
    const rowsPerTxn = CONSUMER.eventsPerMessage * CONSUMER.messagesPerBatch;
    const total = rowsPerTxn * batches.length;
    const variants = [
      ["real", "the queue() handler, as in src/"],
      [
        "values12",
        "bench prototype: 12-row INSERT…VALUES (≤ 100 parameters each), insertAll()'s other statements, one D1 batch",
      ],
      [
        "json_each",
        "bench prototype: INSERT…SELECT FROM json_each(?) per 512 KiB of rows, insertAll()'s other statements, one D1 batch",
      ],
    ];
    for (const [variant, label] of variants) {
      await fetch(`${probe.url}/__bench/reset-events`, { method: "POST" }).then((r) => r.arrayBuffer());
      log(`consumer: ${variant}, ${total} rows in transactions of ${rowsPerTxn}`);
      const { seconds, inWorkerMs, retried, shape } = await consumeThrough(probe.url, batches, variant);
      R.consumer.push({
        writer: `workerd + D1: ${label}`,
        variant,
        rows: total,
        rowsPerTxn,
        seconds,
        rowsPerSec: total / seconds,
        inWorkerRowsPerSec: total / (inWorkerMs / 1000),
        retried,
        statementsPerTxn: shape,
      });
    }
    const around = await (await fetch(`${probe.url}/__bench/consumer-around`)).json();
    R.consumerAround = around;
    const extra =
      around.before.length + around.after.length
        ? ` + insertAll()'s ${around.before.length + around.after.length} other statement(s), per transaction`
        : "";
    for (const [variant, label] of [
      ["single", "one prepared single-row INSERT, reused (bare insert ceiling)"],
      ["values12", `12-row INSERT…VALUES${extra}`],
      ["json_each", `INSERT…SELECT FROM json_each(?) per 512 KiB${extra}`],
      ["json_each_bare", "INSERT…SELECT FROM json_each(?) per 512 KiB, nothing else (what the other statements cost)"],
    ]) {
      log(`consumer: raw SQLite ${variant}`);
      const r = await sqliteTask("insert", {
        messagesFile,
        variant,
        around,
        migrationsDir: path.join(SNAP, "migrations"),
      });
      R.consumer.push({
        writer: `node:sqlite: ${label}`,
        variant: `sqlite_${variant}`,
        rows: r.rows,
        rowsPerTxn,
        seconds: r.seconds,
        rowsPerSec: r.rowsPerSec,
        stored: r.stored,
      });
    }
  }
  if (selected("fix")) {
    // The levers inside the pipeline, same Worker, same local Queue and D1, through the probe:
    // its queue() switched at run time between the real handler and the two prototype inserts,
    // then the real handler with the events queue's max_batch_timeout at 0 instead of wrangler.toml's value.
    R.fix = [];
    const timeoutNow =
      /max_batch_timeout\s*=\s*([\d.]+)/.exec(
        readFileSync(snapConfig(), "utf8").slice(readFileSync(snapConfig(), "utf8").indexOf("[[queues.consumers]]")),
      )?.[1] ?? "?";
    for (const mode of ["real", "values12", "json_each"])
      R.fix.push(await fixRun(ctx, probe, mode, `max_batch_timeout = ${timeoutNow}`, true));
    await probe.stop();
    const config0 = writeDerivedConfig({
      file: path.join(SNAP, "bench/probe/wrangler-timeout0.toml"),
      main: "bench/probe/index.js",
      nameSuffix: "bench-probe",
      transform: withBatchTimeout(0),
    });
    probe = await Server.start("probe-timeout0", { persist, config: config0, argv: devCommand() });
    for (const mode of ["real"]) R.fix.push(await fixRun(ctx, probe, mode, "max_batch_timeout = 0", false));
  }
  await probe.stop();
}

/** One row of the fix table: e2e for 10,000 and for the full count of events in 500-event POSTs, and optionally a 500-event load. */
async function fixRun(ctx, probe, mode, settings, withLoad) {
  const { sizes: SIZES, log } = ctx;
  await fetch(`${probe.url}/__bench/consumer-mode?mode=${mode}`, { method: "POST" }).then((r) => r.arrayBuffer());
  const row = { mode, settings };
  for (const [key, total] of [
    ["small", Math.min(10_000, SIZES.e2eBatch)],
    ["big", SIZES.e2eBatch],
  ]) {
    if (key === "big" && total === Math.min(10_000, SIZES.e2eBatch)) continue;
    const before = await countVisible(probe.url);
    log(`fix: ${mode}, ${settings}: e2e ${total} events in 500-event POSTs`);
    const t0 = Date.now();
    const r = await postBatches(probe.url, {
      total,
      perRequest: 500,
      concurrency: 10,
      runId: `fix-${mode}-${randomUUID()}`,
      clientPerRequest: true,
    });
    const w = await waitForCount(probe.url, before + r.accepted);
    row[key] = {
      events: w.count - before,
      seconds: (w.at - t0) / 1000,
      reached: w.reached,
      perSec: (w.count - before) / ((w.at - t0) / 1000),
    };
  }
  if (withLoad) {
    const before = await countVisible(probe.url);
    log(`fix: ${mode}, ${settings}: 500-event POSTs, ${CONNECTIONS} connections, ${SIZES.ingestSeconds} s`);
    const m = await measureLoad(probe, "", {
      connections: CONNECTIONS,
      duration: SIZES.ingestSeconds,
      method: "POST",
      headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
      body: body(500),
      idReplacement: true,
    });
    const accepted = (m.statuses[202] ?? 0) * 500;
    const t = Date.now();
    const w = await waitForCount(probe.url, before + accepted);
    const cpuAll = probe.cpuByRole();
    Object.assign(row, {
      ingestPerSec: accepted / m.seconds,
      p50: m.p50,
      p99: m.p99,
      runtimePerEventUs: (m.cpuRuntime / Math.max(1, accepted)) * 1e6,
      totalPerEventUs: ((cpuAll.proxy + cpuAll.runtime - (m.cpuAtEnd - m.cpuLoad)) / Math.max(1, accepted)) * 1e6,
      storedPerSec: (w.count - before) / (m.seconds + (w.at - t) / 1000),
      drained: w.reached,
    });
    await settle(probe.url);
  }
  await fetch(`${probe.url}/__bench/consumer-mode?mode=real`, { method: "POST" }).then((r) => r.arrayBuffer());
  return row;
}

/** `n` consumer batches of 20 messages × 250 events, as 500-event POSTs pack them, for application `appId`. */
export function consumerBatches(n, appId) {
  const batches = [];
  const receivedAt = Date.now() * 1000;
  let seq = 0;
  for (let b = 0; b < n; b++) {
    const messages = [];
    for (let m = 0; m < CONSUMER.messagesPerBatch; m++) {
      const events = [];
      for (let e = 0; e < CONSUMER.eventsPerMessage; e++, seq++) {
        events.push({
          event_id: randomUUID(),
          session_id: `s-${Math.floor(seq / 20)}`,
          category: ["page interaction", "navigation", "form", "media", "error"][seq % 5],
          name: `name ${seq % 50}`,
          data: `{"host":"www.xxxxx.com","path":"/p/${seq % 500}","element":"chat bubble"}`,
          timestamp: 1609492527243860 + seq * 1000,
        });
      }
      messages.push({ kind: "events", app: appId, received_at: receivedAt, events });
    }
    batches.push(messages);
  }
  return batches;
}

/**
 * Each batch through the probe's POST /__bench/consume (the real queue() export, or a prototype
 * insert), one request at a time, timed from Node. Returns the seconds, the time inside the Worker,
 * retried messages and the statements of the last batch.
 */
export async function consumeThrough(probeUrl, batches, variant = "real") {
  let inWorkerMs = 0;
  let retried = 0;
  let shape;
  const t0 = performance.now();
  for (const messages of batches) {
    const res = await fetch(`${probeUrl}/__bench/consume?variant=${variant}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages }),
    });
    const out = await res.json();
    if (!res.ok) throw new Error(`consume ${variant}: ${res.status} ${JSON.stringify(out)}`);
    inWorkerMs += out.ms;
    retried += out.retried;
    shape = `${out.statements} (${out.shape})`;
  }
  return { seconds: (performance.now() - t0) / 1000, inWorkerMs, retried, shape };
}
