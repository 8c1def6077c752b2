// Phase `hotpath` (opt-in): the short check to run before merging a change to ingest, the consumer or the
// queries. A named baseline (`--base`, default main) and the code under test (the working tree, or `--ref`),
// plus any `--also <ref,…>`, each as `npm run dev` runs it, beside the trivial Worker, loads interleaved:
// single-event POSTs, 500-event POSTs, 100,000 events end to end, and five query shapes at those 100,000
// events. Figures are ratios in one run (each version ÷ the base, ÷ the trivial Worker) and the runtime
// workerd's CPU per request from /proc, which a loaded machine moves far less than req/s.
//   npm run bench -- --only hotpath [--base <commit>] [--ref <commit>] [--also <commit,…>] [--passes 3] [--quick]

import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import {
  body,
  CONNECTIONS,
  countVisible,
  latencyLoop,
  MANY_CLIENTS,
  measureLoad,
  postBatches,
  READ_HEADERS,
  summarize,
  WRITE_HEADERS,
  waitForCount,
  warm,
} from "../lib/load.mjs";
import { devCommand, exportCommit, prepareLocal, ROOT, Server, STATE, snapConfig } from "../lib/servers.mjs";

export const DEFAULT_BASE = "main";
export const budgetMinutes = ({ quick, flags }) => (quick ? 6 : 12) + 4 * (flags.also?.split(",").length ?? 0);

const CATEGORIES = ["page interaction", "navigation", "form", "media", "error"];
/** The query shapes: one application's events, newest first, a page of 100 with its count. */
const SHAPES = [
  ["none", {}],
  ["session", { session_id: null }], // a session of the first end-to-end run, filled in below
  ["category", { category: CATEGORIES[2] }],
  ["name", { name: "name 7" }],
  ["category+name", { category: CATEGORIES[2], name: "name 7" }], // name 7 is always category 2: 1 event in 50
];

/**
 * A POST body of `n` events for the end-to-end run: 5 categories, 50 names, sessions of 20 events, a
 * timestamp per event, so the query shapes below select what they would in a real application.
 */
function mixedBody(n, id) {
  const parts = [];
  for (let k = 0; k < n; k++) {
    const s = String(k % 60).padStart(2, "0");
    parts.push(
      `{"session_id":"${id}-${Math.floor(k / 20)}","category":"${CATEGORIES[k % 5]}","name":"name ${k % 50}",` +
        `"data":{"host":"www.xxxxx.com","path":"/p/${k % 500}","element":"chat bubble","seq":${k}},` +
        `"timestamp":"2021-01-01 09:${String(Math.floor(k / 60) % 60).padStart(2, "0")}:${s}.${String(k).padStart(6, "0")}"}`,
    );
  }
  return `[${parts.join(",")}]`;
}

/** The versions side by side: the base first, then the code under test, then each `--also`. */
function versions(flags) {
  const git = (...a) => execFileSync("git", a, { cwd: ROOT, encoding: "utf8" }).trim();
  const exported = (ref, key) => {
    const root = path.join(STATE, `hp-${key}`);
    const label = exportCommit(ref, root);
    return { key, label, root, config: path.join(root, "wrangler.toml") };
  };
  const head = flags.ref
    ? { ...exported(flags.ref, "head"), key: "head" }
    : {
        key: "head",
        label: `${git("rev-parse", "--short", "HEAD")}${git("status", "--porcelain", "--", "src", "migrations", "wrangler.toml", "public") ? "+" : ""}`,
        root: ROOT,
        config: snapConfig(),
      };
  const also = (flags.also ?? "")
    .split(",")
    .filter(Boolean)
    .map((ref, i) => exported(ref, `also${i}`));
  return [exported(flags.base ?? DEFAULT_BASE, "base"), head, ...also];
}

async function start(v) {
  const persist = path.join(STATE, `hp-${v.key}-d1`);
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config: v.config, root: v.root });
  const server = await Server.start(`hotpath-${v.key}`, { persist, config: v.config, argv: devCommand(v.root) });
  await warm(`${server.url}/api/event/?limit=1`, READ_HEADERS);
  const r = await fetch(`${server.url}/api/event/`, {
    method: "POST",
    headers: WRITE_HEADERS,
    body: mixedBody(1, "warm"),
  });
  if (r.status !== 202) throw new Error(`${v.label} refused a POST: ${r.status} ${await r.text()}`);
  await waitForCount(server.url, 1, { timeoutMs: 30_000 });
  return server;
}

/** Runtime and proxy workerd CPU seconds of `server` spent while `f` runs. */
async function cpuOf(server, f) {
  const c0 = server.cpuByRole();
  const result = await f();
  const c1 = server.cpuByRole();
  return { result, runtime: c1.runtime - c0.runtime, proxy: c1.proxy - c0.proxy };
}

/** Connections of the 500-event loads: as many as the end-to-end run's concurrent POSTs. */
const BATCH_CONNECTIONS = 10;

/**
 * `amount` POSTs of `n` events (single events at CONNECTIONS connections, batches at BATCH_CONNECTIONS), a client address each; on a real Worker (`real`) then the
 * wait until every accepted event is visible. CPU: both workerd processes during the load, and until stored.
 */
async function ingest(server, { n, amount, real = true }) {
  const before = real ? await countVisible(server.url) : 0;
  const m = await measureLoad(server, `${n}`, {
    connections: n === 1 ? CONNECTIONS : BATCH_CONNECTIONS,
    amount,
    method: "POST",
    headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
    body: body(n),
    idReplacement: true,
  });
  const ok = (m.statuses[202] ?? 0) + (m.statuses[200] ?? 0);
  const row = {
    key: n === 1 ? "single" : `batch${n}`,
    n,
    requests: m.requests,
    ok,
    statuses: m.statuses,
    seconds: m.seconds,
    p50: m.p50,
    p99: m.p99,
    cpuRuntime: m.cpuRuntime,
    cpuProxy: m.cpuProxy,
  };
  if (real) {
    const w = await waitForCount(server.url, before + ok * n, { intervalMs: 200 });
    const c = server.cpuByRole();
    Object.assign(row, {
      stored: w.count - before,
      reached: w.reached,
      cpuAll: c.runtime + c.proxy - (m.cpuAtEnd - m.cpuLoad),
    });
  }
  return row;
}

/** `total` events in 500-event POSTs, 10 at a time, a client each; timed from the first POST until all are visible. */
async function endToEnd(server, total) {
  const before = (await fetch(`${server.url}/api/event/?limit=1`, { headers: READ_HEADERS }).then((r) => r.json()))
    .count;
  const runId = `hp-${randomUUID().slice(0, 8)}`;
  const t0 = Date.now();
  const { result, runtime, proxy } = await cpuOf(server, async () => {
    const posted = await postBatches(server.url, {
      total,
      perRequest: 500,
      concurrency: 10,
      runId,
      clientPerRequest: true,
      makeBody: mixedBody,
    });
    const w = await waitForCount(server.url, before + posted.accepted, { intervalMs: 100 });
    return { ...posted, ...w };
  });
  const seconds = (result.at - t0) / 1000;
  return {
    runId,
    events: result.accepted,
    stored: result.count - before,
    reached: result.reached,
    retries: result.retries,
    seconds,
    eventsPerSec: (result.count - before) / seconds,
    cpuUsPerEvent: ((runtime + proxy) / Math.max(1, result.accepted)) * 1e6,
  };
}

export async function run(ctx, trivial) {
  const { log, flags, quick } = ctx;
  const PASSES = Number(flags.passes ?? (quick ? 2 : 3));
  const SINGLE = quick ? 150 : 300; // single-event POSTs per load
  const BATCH = quick ? 20 : 40; // 500-event POSTs per load
  const E2E = quick ? 20_000 : 100_000;
  const QSECONDS = quick ? 1 : 3; // per shape per version per pass: 20–60 GETs at a loaded machine's 50 ms
  const V = versions(flags);
  const out = {
    versions: V.map(({ key, label }) => ({ key, label })),
    refHead: flags.ref ?? null,
    passes: PASSES,
    single: SINGLE,
    batch: BATCH,
    e2eEvents: E2E,
    ingest: [],
    e2e: [],
    query: [],
  };
  log(`hotpath: ${V.map((v) => `${v.key} ${v.label}`).join(", ")}; ${PASSES} passes`);
  for (const v of V) v.server = await start(v);
  const order = (pass) => (pass % 2 === 0 ? V : [...V].reverse());

  // 1. End to end, first round: every version from (almost) empty to E2E events.
  for (const v of V) {
    log(`hotpath: e2e ${E2E} events, ${v.key}`);
    const r = await endToEnd(v.server, E2E);
    if (!r.reached) throw new Error(`hotpath: ${v.label} stored ${r.stored} of ${r.events} events`);
    out.e2e.push({ round: 0, version: v.key, ...r });
    v.session = `${r.runId}-0-0`;
  }

  // 2. Queries at E2E events, interleaved with the trivial Worker; CPU per GET from the runtime workerd.
  const queries = (v) =>
    SHAPES.map(([name, q]) => [
      name,
      new URLSearchParams({ ...q, ...(q.session_id === null ? { session_id: v.session } : {}), limit: "100" }),
    ]);
  for (let pass = 0; pass < PASSES; pass++) {
    log(`hotpath: queries, pass ${pass + 1}`);
    const t = await latencyLoop(`${trivial.url}/`, { seconds: QSECONDS });
    out.query.push({ pass, version: "trivial", shape: "GET /", times: t.times });
    for (const [i, [name]] of SHAPES.entries()) {
      for (const v of order(pass)) {
        const qs = queries(v)[i][1];
        const { result, runtime } = await cpuOf(v.server, () =>
          latencyLoop(`${v.server.url}/api/event/?${qs}`, { headers: READ_HEADERS, seconds: QSECONDS }),
        );
        if (Object.keys(result.statuses).some((k) => k !== "200"))
          throw new Error(`hotpath: ${v.label} ${name}: ${JSON.stringify(result.statuses)}`);
        out.query.push({
          pass,
          version: v.key,
          shape: name,
          times: result.times,
          cpuUsPerGet: (runtime / result.times.length) * 1e6,
        });
      }
    }
  }

  // 3. Ingest: the trivial Worker, then each version's single-event and 500-event POSTs, a fixed number of
  // requests each (every response counted), each load followed by the wait until its events are stored.
  for (let pass = 0; pass < PASSES; pass++) {
    log(`hotpath: ingest, pass ${pass + 1}`);
    out.ingest.push({ pass, version: "trivial", ...(await ingest(trivial, { n: 1, amount: SINGLE, real: false })) });
    for (const v of order(pass)) {
      out.ingest.push({ pass, version: v.key, ...(await ingest(v.server, { n: 1, amount: SINGLE })) });
      out.ingest.push({ pass, version: v.key, ...(await ingest(v.server, { n: 500, amount: BATCH })) });
    }
  }

  // 4. End to end again, in the reverse order, onto the tables the first round filled.
  for (const v of [...V].reverse()) {
    log(`hotpath: e2e ${E2E} events, ${v.key}, round 2`);
    out.e2e.push({ round: 1, version: v.key, ...(await endToEnd(v.server, E2E)) });
  }
  for (const v of V) {
    v.reloads = v.server.reloads();
    await v.server.stop();
  }
  out.reloads = Object.fromEntries(V.map((v) => [v.key, v.reloads]));
  return out;
}

// ---------------------------------------------------------------------------------------------------
const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const sum = (xs, f) => xs.reduce((n, x) => n + f(x), 0);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** One version's figures (the trivial Worker's with key "trivial"), each { value, passes }: value over all passes together. */
export function figures(o, key) {
  const ing = (k) => o.ingest.filter((r) => r.version === key && r.key === k);
  const over = (rs, num, den) => ({
    value: sum(rs, num) / sum(rs, den),
    passes: rs.map((r) => num(r) / den(r)),
  });
  const us = (rs, cpu, per) => {
    const f = over(rs, cpu, per);
    return { value: f.value * 1e6, passes: f.passes.map((x) => x * 1e6) };
  };
  const trivialSingle = o.ingest.filter((r) => r.version === "trivial");
  const single = key === "trivial" ? trivialSingle : ing("single");
  const f = {
    singleReqPerSec: over(
      single,
      (r) => r.ok,
      (r) => r.seconds,
    ),
    singleRuntimeCpu: us(
      single,
      (r) => r.cpuRuntime,
      (r) => r.ok,
    ),
  };
  if (key === "trivial") {
    f.getP50 = summarize(o.query.filter((r) => r.version === "trivial").flatMap((r) => r.times)).p50;
    return f;
  }
  const T = figures(o, "trivial");
  f.singleVsTrivial = {
    value: f.singleReqPerSec.value / T.singleReqPerSec.value,
    passes: f.singleReqPerSec.passes.map((x, i) => x / T.singleReqPerSec.passes[i]),
  };
  f.singleCpuVsTrivial = {
    value: T.singleRuntimeCpu.value / f.singleRuntimeCpu.value,
    passes: f.singleRuntimeCpu.passes.map((x, i) => T.singleRuntimeCpu.passes[i] / x),
  };
  f.singleAll = us(
    single,
    (r) => r.cpuAll,
    (r) => r.ok,
  );
  const batch = ing("batch500");
  f.batchEventsPerSec = over(
    batch,
    (r) => r.ok * r.n,
    (r) => r.seconds,
  );
  f.batchRuntimeCpu = us(
    batch,
    (r) => r.cpuRuntime,
    (r) => r.ok * r.n,
  );
  f.batchAll = us(
    batch,
    (r) => r.cpuAll,
    (r) => r.ok * r.n,
  );
  f.ingestStored = [...single, ...batch].every((r) => r.reached && r.stored === r.ok * r.n);
  const e2e = o.e2e.filter((r) => r.version === key);
  f.e2eEventsPerSec = over(
    e2e,
    (r) => r.stored,
    (r) => r.seconds,
  );
  f.e2eCpu = { value: mean(e2e.map((r) => r.cpuUsPerEvent)), passes: e2e.map((r) => r.cpuUsPerEvent) };
  f.e2eAllStored = e2e.every((r) => r.reached && r.stored === r.events);
  f.query = SHAPES.map(([name]) => {
    const rs = o.query.filter((r) => r.version === key && r.shape === name);
    return { name, p50: summarize(rs.flatMap((r) => r.times)).p50, cpu: mean(rs.map((r) => r.cpuUsPerGet)) };
  });
  return f;
}

export function render(o) {
  const keys = o.versions.map((v) => v.key);
  const F = Object.fromEntries(keys.map((k) => [k, figures(o, k)]));
  const T = figures(o, "trivial");
  const label = Object.fromEntries(o.versions.map((v) => [v.key, v.label]));
  const others = keys.slice(1);
  const out = [];
  out.push(`#### Hot path: ${o.versions.map((v) => v.label).join(" vs ")}, side by side in one run`);
  out.push("");
  out.push(
    `| figure | ${keys.map((k) => `${label[k]}${k === "base" ? " (base)" : ""}`).join(" | ")} | ${others.map((k) => `${label[k]} ÷ base`).join(" | ")} |`,
  );
  out.push(`|---|${keys.map(() => "---:").join("|")}|${others.map(() => "---:").join("|")}|`);
  const num = (x) => (x && typeof x === "object" ? x.value : x);
  const row = (name, get, fmt, ratio = true) => {
    const vals = keys.map((k) => get(F[k]));
    const cells = vals.map((x) =>
      x && typeof x === "object" ? `${fmt(x.value)} (${x.passes.map(fmt).join(", ")})` : fmt(x),
    );
    const ratios = others.map((_, i) => (ratio ? `${(num(vals[i + 1]) / num(vals[0])).toFixed(2)}×` : "—"));
    out.push(`| ${name} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
  };
  const x2 = (x) => x.toFixed(2);
  row("single-event POST, accepted req/s (passes)", (f) => f.singleReqPerSec, n0);
  row(
    `… ÷ the trivial Worker's req/s in the same pass (${n0(T.singleReqPerSec.value)}: ${T.singleReqPerSec.passes.map(n0).join(", ")})`,
    (f) => f.singleVsTrivial,
    x2,
  );
  row(
    `… runtime workerd CPU µs per request during the load (trivial: ${n0(T.singleRuntimeCpu.value)})`,
    (f) => f.singleRuntimeCpu,
    n0,
  );
  row("… trivial's CPU per request ÷ this one's", (f) => f.singleCpuVsTrivial, x2);
  row("… both workerd, µs per event until stored (the consumer's too)", (f) => f.singleAll, n0);
  row("500-event POST, accepted events/s (passes)", (f) => f.batchEventsPerSec, n0);
  row("… runtime workerd CPU µs per event during the load", (f) => f.batchRuntimeCpu, n0);
  row("… both workerd, µs per event until stored (the consumer's too)", (f) => f.batchAll, n0);
  row(
    "… every accepted event stored",
    (f) => (f.ingestStored ? "yes" : "**no**"),
    (x) => x,
    false,
  );
  row(`end to end, ${n0(o.e2eEvents)} events in 500-event POSTs, events/s (rounds)`, (f) => f.e2eEventsPerSec, n0);
  row("… both workerd, µs per event", (f) => f.e2eCpu, n0);
  row(
    "… every event stored",
    (f) => (f.e2eAllStored ? "yes" : "**no**"),
    (x) => x,
    false,
  );
  for (const [i, [name]] of SHAPES.entries()) {
    row(
      `GET /api/event/ ${name}, p50 ms (× the trivial Worker's GET, ${n2(T.getP50)} ms)`,
      (f) => f.query[i].p50,
      (x) => `${n2(x)} (${(x / T.getP50).toFixed(1)}×)`,
    );
  }
  row("… runtime CPU µs per GET, mean of the five shapes", (f) => mean(f.query.map((q) => q.cpu)), n0);
  out.push("");
  out.push(
    `${o.passes} passes, the versions' order reversed every other pass. Ingest: ${o.single} single-event and ${o.batch} 500-event POSTs per load at ${CONNECTIONS} and ${BATCH_CONNECTIONS} connections, ` +
      "a client address per request, every response counted; each load is followed by the wait until its events are stored, so " +
      '"until stored" holds the queue, the consumer and D1. The trivial Worker (`return new Response("ok")`) takes the same single-event POSTs before each pass. ' +
      `End to end: ${n0(o.e2eEvents)} events in 500-event POSTs, 10 at a time, from the first POST until GET's count shows them all, once on an empty ` +
      "database and once onto it, in the reverse order. Queries: limit 100 with the count, one connection, at the first round's events, interleaved; CPU per GET " +
      `is the runtime workerd's during the shape's loop. Reloads during the run: ${Object.entries(o.reloads ?? {})
        .map(([k, n]) => `${label[k]} ${n}`)
        .join(", ")}.`,
  );
  out.push("");
  return out;
}
