// Phase `query` (issue 4): latency, rows_read and raw SQLite for each query shape at 1,000,000 events
// (100,000 with --quick), beside the trivial Worker (`trivial`).

import { buildDataset } from "../lib/dataset.mjs";
import { cannon, latencyLoop, READ_HEADERS, summarize } from "../lib/load.mjs";
import { devCommand, Server, snapConfig, writeProbeConfig } from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";

const LIMIT = 100;

/** The million rows (100,000 with --quick) of one application, the dev key's, in the run's snapshot's schema. */
function queryDataset(ctx) {
  const { sizes: SIZES, log, R, flags } = ctx;
  return buildDataset({
    name: `query-${SIZES.queryRows}`,
    rows: SIZES.queryRows,
    load: { appId: R.meta.appId ?? "app_dev" },
    rebuild: flags.rebuild,
    log: (m) => log(`query: ${m}`),
  });
}

export function shapesFor(v, rows) {
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
  shapes.push({
    name: `none, offset ${deep.toLocaleString("en")}`,
    mode: "offset",
    offset: deep,
    query: q({ limit: LIMIT, offset: deep }),
  });
  shapes.push({
    name: `category, offset ${deep.toLocaleString("en")}`,
    mode: "offset",
    offset: deep,
    query: q({ category: v.category, limit: LIMIT, offset: deep }),
  });
  return shapes;
}

/**
 * Each cursor shape resolved to its second page (a real `next` link, in the format of the code
 * answering), every shape warmed once; sets each shape's results (and count for offset pages).
 */
export async function resolveShapes(baseUrl, shapes, headers = READ_HEADERS) {
  for (const s of shapes) {
    const url = `${baseUrl}/api/event/?${s.query}`;
    const res = await fetch(url, { headers });
    const page = await res.json();
    if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(page)}`);
    if (s.mode === "cursor") {
      if (page.next) {
        s.query = new URL(page.next).search.slice(1);
        const p2 = await (await fetch(`${baseUrl}/api/event/?${s.query}`, { headers })).json();
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
}

/**
 * D1's rows_read for each shape: the probe runs the request through the real app and re-runs each
 * statement alone for its meta. The statements on events and its roll-ups count as the query's
 * (page = the ORDER BY statement, count = the others); key and application-directory lookups, which
 * a warm isolate serves from its caches, are counted apart (`lookups`).
 */
export async function readRowsRead(probeUrl, shapes, headers = READ_HEADERS) {
  for (const s of shapes) {
    const res = await fetch(`${probeUrl}/api/event/?${s.query}`, { headers: { ...headers, "x-bench-probe": "1" } });
    const out = await res.json();
    if (out.status !== 200) throw new Error(`probe ${s.name}: ${out.status} ${out.response}`);
    const isLookup = (x) => /api_keys|applications/.test(x.sql);
    s.lookups = out.statements.filter(isLookup).length;
    s.statements = out.statements.filter((x) => !isLookup(x));
    s.rowsRead = s.statements.reduce((n, x) => n + x.rows_read, 0);
    s.rowsReadList = s.statements.filter((x) => /order by/i.test(x.sql)).reduce((n, x) => n + x.rows_read, 0);
    s.rowsReadCount = s.rowsRead - s.rowsReadList;
  }
}

export async function run(ctx, trivial) {
  const { sizes: SIZES, quick: QUICK, log, R } = ctx;
  const ds = await queryDataset(ctx);
  const rows = SIZES.queryRows;
  const v = await sqliteTask("probeValues", { file: ds.file, rows });
  const shapes = shapesFor(v, rows);
  const real = await Server.start("real-query", { persist: ds.dir, config: snapConfig(), argv: devCommand() });
  log(`query: real Worker on ${real.url} over ${rows} events`);
  await resolveShapes(real.url, shapes);
  const D = SIZES.latencySeconds;
  const PASSES = 3;
  log(
    `query: latency of ${shapes.length} shapes and the trivial Worker, 1 connection, ${PASSES} interleaved passes of ${(D / PASSES).toFixed(2)} s each`,
  );
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
    if (Object.keys(s.statuses).some((k) => k !== "200"))
      throw new Error(`shape ${s.name}: statuses ${JSON.stringify(s.statuses)}`);
  }
  // The same at 10 connections for two shapes: throughput under concurrency.
  const conc = [];
  for (const s of [shapes[0], shapes[4]]) {
    const r = await cannon(`${real.url}/api/event/?${s.query}`, {
      connections: 10,
      duration: D,
      headers: READ_HEADERS,
    });
    conc.push({ name: s.name, reqPerSec: r.reqPerSec, p50: r.p50, p99: r.p99 });
  }
  const trivConc = await cannon(`${trivial.url}/`, { connections: 10, duration: D });
  await real.stop();

  // rows_read: the probe runs the same request through the real app and D1 reports each statement.
  const config = writeProbeConfig();
  const probe = await Server.start("probe-query", { persist: ds.dir, config, argv: devCommand() });
  await readRowsRead(probe.url, shapes);
  // Where a query's time goes, in one instance: the runtime alone, the statements on D1 alone, the whole app.
  const picks = [0, shapes.findIndex((s) => s.name === "category+name + 1-day range"), shapes.length - 2].filter(
    (i) => i >= 0,
  );
  await fetch(`${probe.url}/__bench/d1/register`, {
    method: "POST",
    body: JSON.stringify({ shapes: shapes.map((s) => s.statements.map(({ sql, params }) => ({ sql, params }))) }),
  });
  const split = {
    ok: [],
    d1: new Map(picks.map((i) => [i, []])),
    d1batch: new Map(picks.map((i) => [i, []])),
    app: new Map(picks.map((i) => [i, []])),
  };
  const slice = Math.max(0.2, D / 3);
  const timed = async (url, opts) => {
    const r = await latencyLoop(url, opts);
    if (Object.keys(r.statuses).some((k) => k !== "200"))
      throw new Error(`GET ${url}: statuses ${JSON.stringify(r.statuses)}`);
    return r;
  };
  for (let pass = 0; pass < 3; pass++) {
    split.ok.push(...(await timed(`${probe.url}/__bench/ok`, { seconds: slice })).times);
    for (const i of picks) {
      split.d1.get(i).push(...(await timed(`${probe.url}/__bench/d1?i=${i}`, { seconds: slice })).times);
      split.d1batch.get(i).push(...(await timed(`${probe.url}/__bench/d1?i=${i}&batch=1`, { seconds: slice })).times);
      split.app
        .get(i)
        .push(
          ...(await timed(`${probe.url}/api/event/?${shapes[i].query}`, { headers: READ_HEADERS, seconds: slice }))
            .times,
        );
    }
  }
  for (const [what, list] of [
    ["ok", [split.ok]],
    ["d1", [...split.d1.values()]],
    ["d1batch", [...split.d1batch.values()]],
    ["app", [...split.app.values()]],
  ]) {
    if (list.some((t) => t.length === 0)) throw new Error(`query split: no ${what} timings`);
  }
  R.querySplit = {
    ok: summarize(split.ok),
    shapes: picks.map((i) => ({
      name: shapes[i].name,
      statements: shapes[i].statements.length,
      d1: summarize(split.d1.get(i)),
      d1batch: summarize(split.d1batch.get(i)),
      app: summarize(split.app.get(i)),
    })),
  };
  await probe.stop();
  log("query: the same SQL on raw SQLite");
  const raw = await sqliteTask("query", {
    file: ds.file,
    shapes: shapes.map((s) => ({ name: s.name, statements: s.statements.map(({ sql, params }) => ({ sql, params })) })),
    iterations: QUICK ? 50 : 300,
    maxMs: QUICK ? 300 : 1500,
  });
  for (const s of shapes) {
    const r = raw.find((x) => x.name === s.name);
    Object.assign(s, { rawP50: r.p50, rawP99: r.p99, plans: r.plans });
  }
  const info = await sqliteTask("info", { file: ds.file });
  R.cost.query = { ...info, bytesPerEvent: info.bytes / info.rows };
  R.query = {
    rows,
    dataset: ds.marker,
    reused: ds.reused,
    values: v,
    trivialP50: triv.p50,
    trivialP99: triv.p99,
    trivialN: triv.n,
    passes: PASSES,
    shapes,
    concurrency: { shapes: conc, trivial: { reqPerSec: trivConc.reqPerSec, p50: trivConc.p50, p99: trivConc.p99 } },
  };
}
