// Phase `before-after` (opt-in): the hot paths of a base commit (`--base`, default 16f69f7) and of the
// code under test, in one run, loads interleaved, the trivial Worker beside both as the yardstick:
// ingest (single-event and 500-event POSTs), end to end, the consumer, and every query shape at
// 1,000,000 events (p50 and D1 rows_read). Each version runs its own src/, migrations/, wrangler.toml,
// dev steps and its own bench probe (bench/probe/index.js as of that commit, which speaks its schema).
//   npm run bench -- --only before-after --ref HEAD [--base <commit>]
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildDataset } from "../lib/dataset.mjs";
import {
  body,
  latencyLoop,
  MANY_CLIENTS,
  READ_HEADERS,
  summarize,
  WRITE_HEADERS,
  waitForCount,
  warm,
} from "../lib/load.mjs";
import {
  d1Files,
  devCommand,
  exportCommit,
  prepareLocal,
  ROOT,
  Server,
  SNAP,
  STATE,
  snapConfig,
  writeDerivedConfig,
  writeProbeConfig,
} from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";
import { endToEnd, ingestLoad } from "./pipeline.mjs";
import { consumerBatches, consumeThrough } from "./probe.mjs";
import { readRowsRead, resolveShapes, shapesFor } from "./query.mjs";

/** Where the session of issues 7 and 8 began. */
export const DEFAULT_BASE = "16f69f7";
export const budgetMinutes = ({ quick }) => (quick ? 10 : 30);

/** The two code versions: the base commit exported from git with its own probe, and the run's snapshot. */
function versions(baseRef) {
  const baseDir = path.join(STATE, "ba-base");
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
      label: headCommit,
      root: ROOT,
      config: snapConfig(),
      migrationsDir: path.join(SNAP, "migrations"),
      probeConfig: writeProbeConfig(),
    },
  ];
}

async function startReal(v, name, persist, { fresh = true } = {}) {
  if (fresh) rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist, { config: v.config, root: v.root });
  const server = await Server.start(name, { persist, config: v.config, argv: devCommand(v.root) });
  await warm(`${server.url}/api/event/?limit=1`, READ_HEADERS);
  return server;
}

export async function run(ctx, trivial) {
  const { sizes: SIZES, log, flags, R } = ctx;
  const V = versions(flags.base ?? DEFAULT_BASE);
  const out = { base: V[0].label, head: V[1].label, refHead: flags.ref ?? null, sizes: SIZES };
  log(`before-after: ${V[0].label} vs ${V[1].label}${flags.ref ? "" : " (working tree)"}`);

  // 1. End to end and ingest, on each version's Worker as `npm run dev` runs it, both running.
  for (const v of V) {
    v.real = await startReal(v, `ba-${v.key}`, path.join(STATE, `ba-${v.key}-real`));
    const r = await fetch(`${v.real.url}/api/event/`, {
      method: "POST",
      headers: WRITE_HEADERS,
      body: body(1, `warm-${v.key}`),
    });
    if (r.status !== 202) throw new Error(`${v.label} refused a POST: ${r.status}`);
    await waitForCount(v.real.url, 1, { timeoutMs: 15_000 });
  }
  out.e2e = { base: [], head: [] };
  for (const which of ["single", "batch"]) {
    for (const v of which === "single" ? V : [...V].reverse()) {
      log(`before-after: e2e ${which}, ${v.label}`);
      out.e2e[v.key].push(...(await endToEnd(v.real.url, SIZES, log, [which])));
    }
  }
  const D = SIZES.ingestSeconds;
  const LOADS = [
    { key: "single", label: "single-event POST, a client per request", n: 1 },
    { key: "batch500", label: "500-event POST", n: 500 },
  ];
  out.ingest = [];
  const PASSES = ctx.quick ? 2 : 3;
  out.passes = PASSES;
  for (let pass = 0; pass < PASSES; pass++) {
    log(`before-after: trivial Worker, pass ${pass + 1}`);
    out.ingest.push({
      pass,
      version: "trivial",
      ...(await ingestLoad(
        {
          server: trivial,
          key: "trivial",
          label: "trivial",
          n: 1,
          headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
          url: `${trivial.url}/api/event/`,
        },
        { real: false, seconds: D },
      )),
    });
    for (const v of pass % 2 === 0 ? V : [...V].reverse()) {
      for (const l of LOADS) {
        log(`before-after: ${l.label}, ${v.label}, pass ${pass + 1}, ${D} s`);
        out.ingest.push({
          pass,
          version: v.key,
          ...(await ingestLoad(
            { server: v.real, ...l, headers: { ...WRITE_HEADERS, ...MANY_CLIENTS } },
            { real: true, seconds: D },
          )),
        });
      }
    }
  }
  for (const v of V) await v.real.stop();
  out.storage = {};
  for (const v of V) {
    const info = await sqliteTask("info", { file: d1Files(path.join(STATE, `ba-${v.key}-real`))[0] });
    out.storage[v.key] = { ...info, bytesPerEvent: info.bytes / info.rows };
  }

  // 2. The consumer: the same 100,000 rows (20 batches of 20 messages × 250 events) through each
  // version's real queue() export, in its probe, two passes each, alternating.
  const batches = consumerBatches(SIZES.consumerBatches, "app_dev");
  const rows = batches.reduce((n, b) => n + b.reduce((m, x) => m + x.events.length, 0), 0);
  for (const v of V) {
    const persist = path.join(STATE, `ba-${v.key}-probe`);
    rmSync(persist, { recursive: true, force: true });
    prepareLocal(persist, { config: v.probeConfig, root: v.root });
    v.probe = await Server.start(`ba-${v.key}-probe`, { persist, config: v.probeConfig, argv: devCommand(v.root) });
  }
  out.consumer = [];
  for (let pass = 0; pass < PASSES; pass++) {
    for (const v of pass % 2 === 0 ? V : [...V].reverse()) {
      await fetch(`${v.probe.url}/__bench/reset-events`, { method: "POST" }).then((r) => r.arrayBuffer());
      log(`before-after: consumer, ${v.label}, pass ${pass + 1}, ${rows} rows`);
      const r = await consumeThrough(v.probe.url, batches, "real");
      out.consumer.push({
        pass,
        version: v.key,
        rows,
        seconds: r.seconds,
        rowsPerSec: rows / r.seconds,
        retried: r.retried,
        statements: r.shape,
      });
    }
  }
  // Where the ingest CPU goes: each version's own parse / validate / pack code on a 500-event body, in its probe.
  out.profile = [];
  const text = body(500, "bench-profile-session");
  const rounds = ctx.quick ? 40 : 200;
  for (let pass = 0; pass < 2; pass++) {
    for (const v of pass % 2 === 0 ? V : [...V].reverse()) {
      for (const part of ["parse", "validate", "pack"]) {
        const c0 = v.probe.cpuByRole().runtime;
        const r = await (
          await fetch(`${v.probe.url}/__bench/profile?part=${part}&rounds=${rounds}`, { method: "POST", body: text })
        ).json();
        out.profile.push({
          pass,
          version: v.key,
          part,
          usPerEvent: ((v.probe.cpuByRole().runtime - c0) / r.events) * 1e6,
        });
      }
    }
  }
  for (const v of V) await v.probe.stop();

  // 3. Queries over 1,000,000 events (100,000 with --quick), each version on its own copy of the same rows.
  const qRows = SIZES.queryRows;
  for (const v of V) {
    v.ds = await buildDataset({
      name: v.key === "head" ? `query-${qRows}` : `ba-base-query-${qRows}`,
      rows: qRows,
      load: { appId: R.meta.appId ?? "app_dev" },
      code: { migrationsDir: v.migrationsDir, config: v.config, root: v.root },
      rebuild: flags.rebuild,
      log: (m) => log(`before-after: ${v.label}: ${m}`),
    });
    const values = await sqliteTask("probeValues", { file: v.ds.file, rows: qRows });
    v.shapes = shapesFor(values, qRows);
    v.query = await startReal(v, `ba-${v.key}-query`, v.ds.dir, { fresh: false });
    await resolveShapes(v.query.url, v.shapes);
  }
  const QPASSES = 3;
  const slice = SIZES.latencySeconds / QPASSES;
  const trivTimes = [];
  for (const v of V) v.times = v.shapes.map(() => []);
  for (let pass = 0; pass < QPASSES; pass++) {
    log(`before-after: query latency, pass ${pass + 1} of ${QPASSES}`);
    trivTimes.push(...(await latencyLoop(`${trivial.url}/`, { seconds: slice })).times);
    for (let i = 0; i < V[0].shapes.length; i++) {
      for (const v of pass % 2 === 0 ? V : [...V].reverse()) {
        const r = await latencyLoop(`${v.query.url}/api/event/?${v.shapes[i].query}`, {
          headers: READ_HEADERS,
          seconds: slice,
        });
        if (Object.keys(r.statuses).some((k) => k !== "200"))
          throw new Error(`${v.label} ${v.shapes[i].name}: ${JSON.stringify(r.statuses)}`);
        v.times[i].push(...r.times);
      }
    }
  }
  for (const v of V) await v.query.stop();
  for (const v of V) {
    const probe = await Server.start(`ba-${v.key}-probe-query`, {
      persist: v.ds.dir,
      config: v.probeConfig,
      argv: devCommand(v.root),
    });
    await readRowsRead(probe.url, v.shapes);
    await probe.stop();
    for (const [i, s] of v.shapes.entries()) Object.assign(s, summarize(v.times[i]));
  }
  const triv = summarize(trivTimes);
  out.query = {
    rows: qRows,
    trivialP50: triv.p50,
    trivialN: triv.n,
    passes: QPASSES,
    shapes: V[0].shapes.map((s, i) => ({ name: s.name, base: pick(s), head: pick(V[1].shapes[i]) })),
    datasets: Object.fromEntries(V.map((v) => [v.key, { reused: v.ds.reused, ...v.ds.marker }])),
  };
  return out;
}

const pick = (s) => ({
  name: s.name,
  p50: s.p50,
  p99: s.p99,
  n: s.n,
  results: s.results,
  count: s.count,
  rowsList: s.rowsReadList,
  rowsCount: s.rowsReadCount,
  lookups: s.lookups,
  statements: s.statements?.length,
});

const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const x2 = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "—");

/** Sums a version's passes of one load: rate over all seconds, CPU per event over all events. */
function merged(rows, version, key) {
  const rs = rows.filter((r) => r.version === version && r.key === key);
  const seconds = rs.reduce((n, r) => n + r.seconds, 0);
  const accepted = rs.reduce((n, r) => n + (r.version === "trivial" ? r.requests : r.accepted), 0);
  const reqs = rs.reduce((n, r) => n + r.acceptedReqPerSec * r.seconds, 0);
  return {
    reqPerSec: reqs / seconds,
    eventsPerSec: accepted / seconds,
    passes: rs.map((r) => r.acceptedReqPerSec),
    cpuUs: (rs.reduce((n, r) => n + r.cpuLoad, 0) / accepted) * 1e6,
    cpuTotalUs: rs.every((r) => r.cpuTotal !== undefined)
      ? (rs.reduce((n, r) => n + r.cpuTotal, 0) / accepted) * 1e6
      : undefined,
    p50: rs.map((r) => r.p50),
  };
}

export function render(o) {
  const out = [];
  out.push(`#### Before/after: ${o.base} → ${o.head}, side by side in one run`);
  out.push("");
  const triv = merged(o.ingest, "trivial", "trivial");
  const L = (v, k) => merged(o.ingest, v, k);
  const rows = [];
  const both = (label, get, fmt = n0, ratioOf = get) => {
    const [b, h] = ["base", "head"].map(get);
    const [rb, rh] = ["base", "head"].map(ratioOf);
    rows.push(`| ${label} | ${fmt(b)} | ${fmt(h)} | ${typeof rb === "number" ? x2(rh, rb) : "—"} |`);
  };
  out.push(`| figure | ${o.base} (before) | ${o.head} (after) | after ÷ before |`);
  out.push("|---|---:|---:|---:|");
  rows.push(
    `| trivial Worker, single-event POST, req/s (both passes) | ${n0(triv.reqPerSec)} | ${n0(triv.reqPerSec)} | — |`,
  );
  both(
    "single-event POST, accepted req/s (passes)",
    (v) => L(v, "single"),
    (m) => `${n0(m.reqPerSec)} (${m.passes.map(n0).join(", ")})`,
    (v) => L(v, "single").reqPerSec,
  );
  both(
    "… × trivial req/s",
    (v) => L(v, "single").reqPerSec / triv.reqPerSec,
    (x) => `${x.toFixed(2)}×`,
  );
  both(
    "… workerd CPU µs per event, load / incl. consumer",
    (v) => L(v, "single"),
    (m) => `${n0(m.cpuUs)} / ${n0(m.cpuTotalUs)}`,
    (v) => L(v, "single").cpuTotalUs,
  );
  both(
    "500-event POST, accepted events/s (passes, req/s)",
    (v) => L(v, "batch500"),
    (m) => `${n0(m.eventsPerSec)} (${m.passes.map((p) => n0(p * 500)).join(", ")})`,
    (v) => L(v, "batch500").eventsPerSec,
  );
  both(
    "… req/s × trivial req/s",
    (v) => L(v, "batch500").reqPerSec / triv.reqPerSec,
    (x) => `${x.toFixed(3)}×`,
  );
  both(
    "… workerd CPU µs per event, load / incl. consumer",
    (v) => L(v, "batch500"),
    (m) => `${n0(m.cpuUs)} / ${n0(m.cpuTotalUs)}`,
    (v) => L(v, "batch500").cpuTotalUs,
  );
  for (const i of [0, 1]) {
    both(
      `end to end, ${o.e2e.head[i].label}: s (events/s)`,
      (v) => o.e2e[v][i],
      (r) => `${n2(r.seconds)} (${n0(r.visible / r.seconds)})${r.reached ? "" : " not all"}`,
      (v) => o.e2e[v][i].visible / o.e2e[v][i].seconds,
    );
  }
  const cons = (v) => o.consumer.filter((c) => c.version === v);
  both(
    "consumer (queue() → D1), rows/s (passes)",
    (v) => cons(v),
    (cs) =>
      `${n0(cs.reduce((n, c) => n + c.rows, 0) / cs.reduce((n, c) => n + c.seconds, 0))} (${cs.map((c) => n0(c.rowsPerSec)).join(", ")})`,
    (v) => cons(v).reduce((n, c) => n + c.rows, 0) / cons(v).reduce((n, c) => n + c.seconds, 0),
  );
  both(
    "… D1 statements per queue() batch of 5,000 rows",
    (v) => cons(v)[0].statements,
    (s) => s,
  );
  for (const [part, label] of [
    ["parse", "JSON.parse + eventsOf"],
    ["validate", "… + validateEvents"],
    ["pack", "… + eventMessages + JSON.stringify"],
  ]) {
    const us = (v) => {
      const ps = (o.profile ?? []).filter((p) => p.version === v && p.part === part);
      return ps.length ? ps.reduce((n, p) => n + p.usPerEvent, 0) / ps.length : NaN;
    };
    if (o.profile)
      both(`Worker's own ingest code, µs per event of a 500-event body: ${label} (mean of 2 passes)`, us, (x) =>
        x.toFixed(1),
      );
  }
  both(
    "D1 file bytes per event after these runs (events)",
    (v) => o.storage[v],
    (s) => `${n0(s.bytesPerEvent)} (${n0(s.rows)})`,
    (v) => o.storage[v].bytesPerEvent,
  );
  out.push(...rows);
  out.push("");
  out.push(
    `Ingest: 50 connections, ${o.sizes.ingestSeconds} s per load, ${o.passes ?? 2} passes (the order of the versions reversed every other pass), the trivial Worker ` +
      'before each pass; a load on a real Worker runs until every accepted event is visible (so "incl. consumer" has the queue and the D1 ' +
      "writes). End to end: as in table 2, first POST until GET's count shows them all (one run each). Consumer: the probe of each version (bench/probe/index.js " +
      "as of that commit) calls its real `queue()` export with 20 batches of 20 messages × 250 events, timed from Node, one pass per ingest pass.",
  );
  out.push("");
  const q = o.query;
  out.push(
    `Queries at ${n0(q.rows)} events (one application), limit 100, 1 connection, ${q.passes} interleaved passes; trivial Worker GET p50 ${n2(q.trivialP50)} ms:`,
  );
  out.push("");
  out.push(
    `| shape | ${o.base} p50 ms (× trivial) | ${o.head} p50 ms (× trivial) | after ÷ before | rows_read page + count, ${o.base} | rows_read page + count, ${o.head} |`,
  );
  out.push("|---|---:|---:|---:|---:|---:|");
  for (const s of q.shapes) {
    out.push(
      `| ${s.head.name} | ${n2(s.base.p50)} (${x2(s.base.p50, q.trivialP50)}) | ${n2(s.head.p50)} (${x2(s.head.p50, q.trivialP50)}) | ${x2(s.head.p50, s.base.p50)} | ` +
        `${n0(s.base.rowsList)} + ${n0(s.base.rowsCount)} | ${n0(s.head.rowsList)} + ${n0(s.head.rowsCount)} |`,
    );
  }
  out.push("");
  out.push(
    "Each version on its own copy of the same synthetic rows (the loader of bench/sqlite-tasks.cjs into the version's first schema, then " +
      "its remaining migrations and dev seed, as in table 4). rows_read from each version's probe, which re-runs every statement the request " +
      "issued for D1's meta.rows_read; key and application-directory lookups (served from the isolate's caches when warm) are not counted.",
  );
  out.push("");
  return out;
}
