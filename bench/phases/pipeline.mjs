// Phases `e2e` and `ingest` (issues 2 and 4): the real Worker as `npm run dev` runs it, on a fresh
// local D1 — first POST until all visible, then each ingest load beside the trivial Worker (`trivial`).
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import {
  body,
  CONNECTIONS,
  cannon,
  countVisible,
  MANY_CLIENTS,
  measureLoad,
  postBatches,
  READ_HEADERS,
  settle,
  WRITE_HEADERS,
  waitForCount,
  warm,
} from "../lib/load.mjs";
import { d1Files, devCommand, prepareLocal, ROOT, Server, STATE, snapConfig } from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";

export async function run(ctx, trivial) {
  const { sizes: SIZES, log, R, selected } = ctx;
  const persist = path.join(STATE, "real");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist);
  const real = await Server.start("real", { persist, config: snapConfig(), argv: devCommand() });
  log(`real Worker (\`${devCommand().join(" ")}\`) on ${real.url}, state in ${path.relative(ROOT, persist)}`);
  await warm(`${real.url}/api/event/?limit=1`, READ_HEADERS);
  const warmPost = await fetch(`${real.url}/api/event/`, {
    method: "POST",
    headers: WRITE_HEADERS,
    body: body(1, `warm-${randomUUID()}`),
  });
  if (warmPost.status !== 202)
    throw new Error(`real Worker refused a POST: ${warmPost.status} ${await warmPost.text()}`);
  await waitForCount(real.url, 1, { timeoutMs: 15_000 });

  if (selected("e2e")) {
    R.e2e.push(...(await endToEnd(real.url, SIZES, log)));
  }

  if (selected("ingest")) {
    const D = SIZES.ingestSeconds;
    const loads = [
      {
        server: trivial,
        key: "trivial",
        label: 'trivial Worker (`return new Response("ok")`), same POST',
        n: 1,
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
        url: `${trivial.url}/api/event/`,
      },
      {
        server: real,
        key: "single",
        label: "single-event POST, a client per request",
        n: 1,
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
      },
      {
        server: real,
        key: "single-pool",
        label: "single-event POST, 1,000 clients taking turns",
        n: 1,
        headers: WRITE_HEADERS,
        clientPool: 1000,
      },
      {
        server: real,
        key: "single-1client",
        label: "single-event POST, one client (rate limiter on)",
        n: 1,
        headers: { ...WRITE_HEADERS, "cf-connecting-ip": `bench-one-${randomUUID()}` },
      },
      {
        server: real,
        key: "batch100",
        label: "100-event POST",
        n: 100,
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
      },
      {
        server: real,
        key: "batch500",
        label: "500-event POST",
        n: 500,
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
      },
    ];
    for (const l of loads) {
      log(`ingest: ${l.label}, ${CONNECTIONS} connections, ${D} s`);
      R.ingest.push(await ingestLoad(l, { real: l.server === real, seconds: D }));
    }
  }
  await real.stop();
  const [file] = d1Files(persist);
  const info = await sqliteTask("info", { file });
  R.cost.pipeline = { ...info, bytesPerEvent: info.bytes / Math.max(1, info.rows) };
  R.meta.appId = info.appId;
}

/**
 * Issue 2 and issue 4 item 2 on one Worker: 10,000 single-event POSTs at 50 connections ("single"),
 * then 100,000 events in 500-event POSTs 10 at a time ("batch"), each timed from the first POST until
 * GET's count shows them all. Returns the rows of the end-to-end table, in that order.
 */
export async function endToEnd(url, SIZES, log = () => {}, which = ["single", "batch"]) {
  const out = [];
  if (which.includes("single")) {
    const before = await countVisible(url);
    log(`e2e: ${SIZES.e2eSingle} single-event POSTs at ${CONNECTIONS} connections`);
    const t0 = Date.now();
    const r = await cannon(`${url}/api/event/`, {
      connections: CONNECTIONS,
      amount: SIZES.e2eSingle,
      method: "POST",
      headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
      body: body(1),
      idReplacement: true,
    });
    const postedAt = Date.now();
    const accepted = r.statuses[202] ?? 0;
    const w = await waitForCount(url, before + accepted);
    out.push({
      label: `${SIZES.e2eSingle.toLocaleString("en")} single-event POSTs, ${CONNECTIONS} connections`,
      events: accepted,
      requests: r.requests,
      statuses: r.statuses,
      postSeconds: (postedAt - t0) / 1000,
      seconds: (w.at - t0) / 1000,
      reached: w.reached,
      visible: w.count - before,
      p50: r.p50,
      p99: r.p99,
    });
  }
  if (which.includes("batch")) {
    const before = await countVisible(url);
    log(`e2e: ${SIZES.e2eBatch} events in 500-event POSTs, 10 at a time`);
    const t0 = Date.now();
    const r = await postBatches(url, {
      total: SIZES.e2eBatch,
      perRequest: 500,
      concurrency: 10,
      runId: `e2e-${randomUUID()}`,
      headers: { "cf-connecting-ip": "bench-e2e" },
      clientPerRequest: true,
    });
    const postedAt = Date.now();
    const w = await waitForCount(url, before + r.accepted);
    out.push({
      label: `${SIZES.e2eBatch.toLocaleString("en")} events in 500-event POSTs, 10 connections`,
      events: r.accepted,
      requests: r.requests,
      statuses: r.statuses,
      retries: r.retries,
      postSeconds: (postedAt - t0) / 1000,
      seconds: (w.at - t0) / 1000,
      reached: w.reached,
      visible: w.count - before,
      p50: r.p50,
      p99: r.p99,
    });
  }
  return out;
}

/**
 * One ingest load (autocannon, 50 connections, `seconds`) on `l.server`, with its workerd CPU; on the
 * real Worker (`real`) also until every accepted event is visible, so the CPU includes the consumer.
 * `l`: { server, key, label, n (events per POST), headers, url?, clientPool? }. Returns a row of the ingest table.
 */
export async function ingestLoad(l, { real, seconds }) {
  const url = l.server.url;
  const before = real ? await countVisible(url) : 0;
  const m = await measureLoad(l.server, l.label, {
    url: l.url,
    connections: CONNECTIONS,
    duration: seconds,
    method: "POST",
    headers: l.headers,
    body: body(l.n),
    idReplacement: true,
    clientPool: l.clientPool,
  });
  const accepted = (m.statuses[202] ?? 0) * l.n;
  const per = Math.max(1, real ? accepted : m.requests);
  const row = {
    key: l.key,
    label: l.label,
    perRequest: l.n,
    seconds: m.seconds,
    requests: m.requests,
    reqPerSec: m.reqPerSec,
    acceptedReqPerSec: (real ? (m.statuses[202] ?? 0) : (m.statuses[200] ?? 0)) / m.seconds,
    eventsPerSec: real ? accepted / m.seconds : m.reqPerSec,
    accepted,
    p50: m.p50,
    p99: m.p99,
    statuses: m.statuses,
    errors: m.errors,
    timeouts: m.timeouts,
    cpuLoad: m.cpuLoad,
    cpuPerEventUs: (m.cpuLoad / per) * 1e6,
    proxyPerEventUs: (m.cpuProxy / per) * 1e6,
    runtimePerEventUs: (m.cpuRuntime / per) * 1e6,
  };
  if (real) {
    const t = Date.now();
    const w = await waitForCount(url, before + accepted);
    const cpuDrained = l.server.cpuSeconds();
    Object.assign(row, {
      drainSeconds: (w.at - t) / 1000,
      drained: w.reached,
      visible: w.count - before,
      cpuTotal: cpuDrained - (m.cpuAtEnd - m.cpuLoad),
      cpuTotalPerEventUs: ((cpuDrained - (m.cpuAtEnd - m.cpuLoad)) / Math.max(1, accepted)) * 1e6,
      storedPerSec: (w.count - before) / ((w.at - t) / 1000 + m.seconds),
    });
    // A workerd process whose /proc/<pid>/stat could not be read counts 0 ticks: a total under the load's
    // own CPU is such a misreading (one run printed a negative figure), not a measurement.
    if (!(row.cpuTotal >= m.cpuLoad)) Object.assign(row, { cpuTotal: undefined, cpuTotalPerEventUs: undefined });
    // Requests in flight when autocannon stopped were accepted too (no response counted): let them land.
    row.inFlightAccepted = (await settle(url)) - w.count;
  }
  row.rssMiB = l.server.rssMiB();
  return row;
}
