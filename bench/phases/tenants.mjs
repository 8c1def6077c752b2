// Phase `tenants` (issue 8): a small tenant, 0.1 % of 1,000,000 events (100,000 with --quick) shared by
// 10 applications, read with a key scoped to it; the same pages read across all applications with 10
// applications and with 1 (the query data set); and the scoped page on the code before compact events
// (`--base`, 16f69f7), where the application was not in any index. D1 rows_read and p50 per shape.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { buildDataset } from "../lib/dataset.mjs";
import { latencyLoop, READ_HEADERS, summarize } from "../lib/load.mjs";
import {
  devCommand,
  exportCommit,
  prepareLocal,
  ROOT,
  Server,
  STATE,
  snapConfig,
  writeDerivedConfig,
  writeProbeConfig,
} from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";
import { readRowsRead } from "./query.mjs";

/** Minutes this phase adds to the run's budget. */
export const budgetMinutes = () => 6;
export const DEFAULT_BASE = "16f69f7";
const TENANT = "app_tenant_small";
const OTHERS = Array.from({ length: 9 }, (_, i) => `app_tenant_big_${i + 1}`);
/** A read key scoped to the small tenant, added to the data sets by the bench (stored as SHA-256). */
const TENANT_KEY = "bench_read_key_tenant_small";
const TENANT_HEADERS = { authorization: `Bearer ${TENANT_KEY}` };
const LIMIT = 100;

function shapes() {
  const q = (o) => new URLSearchParams({ ...o, limit: String(LIMIT) }).toString();
  const range = { timestamp_after: "2021-01-15", timestamp_before: "2021-01-16" };
  const out = [];
  for (const [name, f] of [
    ["none", {}],
    ["category", { category: "page interaction" }],
    ["name", { name: "cta click" }],
    ["category+name", { category: "page interaction", name: "cta click" }],
  ]) {
    out.push({ name, query: q(f) });
    out.push({ name: `${name} + 1-day range`, query: q({ ...f, ...range }) });
  }
  return out;
}

export async function run(ctx, trivial) {
  const { sizes: SIZES, log, flags, R } = ctx;
  const rows = SIZES.queryRows;
  const baseDir = path.join(STATE, "tenants-base");
  const baseRef = flags.base ?? DEFAULT_BASE;
  const base = exportCommit(baseRef, baseDir);
  mkdirSync(path.join(baseDir, "bench/probe"), { recursive: true });
  writeFileSync(
    path.join(baseDir, "bench/probe/index.js"),
    execFileSync("git", ["show", `${baseRef}:bench/probe/index.js`], { cwd: ROOT }),
  );
  const baseConfig = path.join(baseDir, "wrangler.toml");
  const code = {
    head: { config: snapConfig(), root: undefined, probe: writeProbeConfig() },
    base: {
      config: baseConfig,
      root: baseDir,
      migrationsDir: path.join(baseDir, "migrations"),
      probe: writeDerivedConfig({
        file: path.join(baseDir, "bench/probe/wrangler.toml"),
        main: "bench/probe/index.js",
        nameSuffix: "bench-probe",
        template: baseConfig,
      }),
    },
  };
  const load10 = { apps: OTHERS, tenant: { id: TENANT, every: 1000 } };
  const sets = {
    head10: await buildDataset({
      name: `tenants-${rows}`,
      rows,
      load: load10,
      rebuild: flags.rebuild,
      log: (m) => log(`tenants: ${m}`),
    }),
    head1: await buildDataset({
      name: `query-${rows}`,
      rows,
      load: { appId: R.meta.appId ?? "app_dev" },
      rebuild: flags.rebuild,
      log: (m) => log(`tenants: ${m}`),
    }),
    base10: await buildDataset({
      name: `tenants-base-${rows}`,
      rows,
      load: load10,
      code: { migrationsDir: code.base.migrationsDir, config: code.base.config, root: code.base.root },
      rebuild: flags.rebuild,
      log: (m) => log(`tenants: ${base}: ${m}`),
    }),
  };
  for (const k of ["head10", "base10"])
    await sqliteTask("keys", {
      file: sets[k].file,
      keys: [{ id: "key_bench_tenant_small", key: TENANT_KEY, kind: "read", appId: TENANT }],
    });

  // The variants: which data set, which code, which key.
  const V = [
    {
      key: "baseScoped",
      label: `${base}, key scoped to the tenant`,
      set: "base10",
      code: "base",
      headers: TENANT_HEADERS,
    },
    {
      key: "scoped",
      label: "this run, key scoped to the tenant",
      set: "head10",
      code: "head",
      headers: TENANT_HEADERS,
    },
    {
      key: "all10",
      label: "this run, key for all applications, 10 applications",
      set: "head10",
      code: "head",
      headers: READ_HEADERS,
    },
    {
      key: "all1",
      label: "this run, key for all applications, 1 application",
      set: "head1",
      code: "head",
      headers: READ_HEADERS,
    },
  ];
  const servers = {};
  for (const set of ["base10", "head10", "head1"]) {
    const c = code[set === "base10" ? "base" : "head"];
    prepareLocal(sets[set].dir, { config: c.config, root: c.root }); // as `npm run dev` starts
    servers[set] = await Server.start(`tenants-${set}`, {
      persist: sets[set].dir,
      config: c.config,
      argv: devCommand(c.root),
    });
  }
  const S = shapes();
  for (const v of V) {
    v.shapes = S.map((s) => ({ ...s, mode: "offset", offset: 0 }));
    for (const s of v.shapes) {
      const res = await fetch(`${servers[v.set].url}/api/event/?${s.query}`, { headers: v.headers });
      const page = await res.json();
      if (!res.ok) throw new Error(`${v.label} ${s.name}: ${res.status} ${JSON.stringify(page)}`);
      Object.assign(s, { results: page.results.length, count: page.count, times: [] });
    }
  }
  const PASSES = 3;
  const slice = SIZES.latencySeconds / PASSES;
  const trivTimes = [];
  for (let pass = 0; pass < PASSES; pass++) {
    log(`tenants: latency, pass ${pass + 1} of ${PASSES}`);
    trivTimes.push(...(await latencyLoop(`${trivial.url}/`, { seconds: slice })).times);
    for (let i = 0; i < S.length; i++) {
      for (const v of pass % 2 ? [...V].reverse() : V) {
        const r = await latencyLoop(`${servers[v.set].url}/api/event/?${v.shapes[i].query}`, {
          headers: v.headers,
          seconds: slice,
        });
        if (Object.keys(r.statuses).some((k) => k !== "200"))
          throw new Error(`${v.label} ${S[i].name}: ${JSON.stringify(r.statuses)}`);
        v.shapes[i].times.push(...r.times);
      }
    }
  }
  for (const s of Object.values(servers)) await s.stop();
  for (const set of ["base10", "head10", "head1"]) {
    const c = code[set === "base10" ? "base" : "head"];
    const probe = await Server.start(`tenants-${set}-probe`, {
      persist: sets[set].dir,
      config: c.probe,
      argv: devCommand(c.root),
    });
    for (const v of V.filter((x) => x.set === set)) await readRowsRead(probe.url, v.shapes, v.headers);
    await probe.stop();
  }
  for (const v of V) {
    for (const s of v.shapes) {
      Object.assign(s, summarize(s.times));
      delete s.times;
    }
  }
  return {
    rows,
    base,
    tenantShare: 1 / load10.tenant.every,
    apps: OTHERS.length + 1,
    trivialP50: summarize(trivTimes).p50,
    variants: V.map((v) => ({
      key: v.key,
      label: v.label,
      shapes: v.shapes.map(({ name, results, count, p50, p99, n, rowsReadList, rowsReadCount, lookups }) => ({
        name,
        results,
        count,
        p50,
        p99,
        n,
        rowsReadList,
        rowsReadCount,
        lookups,
      })),
    })),
  };
}

const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 10 ? x.toFixed(1) : x.toFixed(2));

export function render(o) {
  const out = [];
  out.push(
    `#### One page per tenant (issue 8): a tenant with ${(o.tenantShare * 100).toFixed(1)} % of ${n0(o.rows)} events, ${o.apps} applications`,
  );
  out.push("");
  out.push(
    `Offset page 1 (limit ${LIMIT}) and its count; D1 rows_read page + count, and p50 ms (1 connection, 3 interleaved passes; trivial Worker p50 ${n2(o.trivialP50)} ms):`,
  );
  out.push("");
  out.push(`| shape | ${o.variants.map((v) => v.label).join(" | ")} |`);
  out.push(`|---|${o.variants.map(() => "---:").join("|")}|`);
  const shapes = o.variants[0].shapes.map((s) => s.name);
  shapes.forEach((name, i) => {
    out.push(
      `| ${name} | ${o.variants
        .map((v) => {
          const s = v.shapes[i];
          return `${n0(s.rowsReadList)} + ${n0(s.rowsReadCount)} (${n2(s.p50)} ms; ${n0(s.results)} of ${n0(s.count)})`;
        })
        .join(" | ")} |`,
    );
  });
  out.push("");
  out.push(
    "Cells: rows_read of the page + of its count (p50; results on the page of the count). Data sets: the query data set's loader, one row in " +
      `${n0(1 / o.tenantShare)} for the tenant and the others' rows spread over 9 applications, in each code's own schema (its migrations after the load); ` +
      '"1 application" is the query data set itself. The scoped key is added to each data set as a read key of the tenant\'s application.',
  );
  out.push("");
  return out;
}
