// Phase `schemas` (issue 9): what validating each event's `data` against its type's JSON Schema costs at
// ingestion. Three instances of the Worker as `npm run dev` runs it, side by side: no schema registered,
// a schema for the one event type the load sends (schema cache on, PAYLOAD_SCHEMA_CACHE_SECONDS 60, the
// default), and the same schema with the cache off (`--var PAYLOAD_SCHEMA_CACHE_SECONDS:0`: a D1 read per
// request). 500-event and single-event POSTs, loads interleaved, the order reversed every other pass.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import {
  body,
  CONNECTIONS,
  countVisible,
  eventJson,
  MANY_CLIENTS,
  measureLoad,
  READ_HEADERS,
  settle,
  WRITE_HEADERS,
  warm,
} from "../lib/load.mjs";
import { childEnv, devCommand, prepareLocal, ROOT, Server, SNAP, STATE, snapConfig } from "../lib/servers.mjs";

/** Minutes this phase adds to the run's budget. */
export const budgetMinutes = ({ quick }) => (quick ? 2 : 6);

const PASSES = 3;
/** The load's one event type (lib/load.mjs eventJson()). */
const CATEGORY = "page interaction";
const NAME = "cta click";
/**
 * A schema for that type's data (`{"host":"www.xxxxx.com","path":"/","element":"chat bubble","seq":N}`),
 * strict as an operator would write it: every event of the load passes it, every keyword is evaluated.
 */
export const SCHEMA = {
  type: "object",
  required: ["host", "path"],
  additionalProperties: false,
  properties: {
    host: { type: "string", format: "hostname" },
    path: { type: "string", pattern: "^/" },
    element: { type: "string", maxLength: 150 },
    seq: { type: "integer", minimum: 0 },
  },
};

const INSTANCES = [
  { key: "none", label: "no schema", schema: false, extra: [] },
  { key: "on", label: "schema, cache on (60 s, default)", schema: true, extra: [] },
  {
    key: "off",
    label: "schema, cache off (D1 read per request)",
    schema: true,
    extra: ["--var", "PAYLOAD_SCHEMA_CACHE_SECONDS:0"],
  },
];
const LOADS = [
  { key: "batch500", label: "500-event POST", n: 500 },
  { key: "single", label: "single-event POST", n: 1 },
];

const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** Stores the schema as `npm run schemas -- set` does (compact JSON, for every application), in `persist`'s local D1. */
function registerSchema(persist) {
  const sql =
    `INSERT INTO payload_schemas (category, name, app_id, schema, updated_at) VALUES (${quote(CATEGORY)}, ${quote(NAME)}, '', ` +
    `${quote(JSON.stringify(SCHEMA))}, ${Date.now() * 1000})`;
  const r = spawnSync(
    "wrangler",
    ["d1", "execute", "DB", "--local", "--persist-to", persist, "--config", snapConfig(), "--command", sql],
    {
      cwd: ROOT,
      env: childEnv({ CI: "true" }),
      stdio: ["ignore", "pipe", "pipe"],
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`registering the schema failed:\n${r.stdout}\n${r.stderr}`);
}

/** The operator CLI's own check (scripts/schemas.mjs check), so the bench measures a schema it would store. */
function cliAccepts(log) {
  const cli = path.join(ROOT, "scripts/schemas.mjs");
  if (!existsSync(cli)) {
    log("schemas: scripts/schemas.mjs not in this checkout; schema not checked by the CLI");
    return null;
  }
  const r = spawnSync(process.execPath, [cli, "check", "-"], {
    cwd: ROOT,
    env: childEnv(),
    input: JSON.stringify(SCHEMA),
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`the operator CLI refuses the bench's schema:\n${r.stdout}${r.stderr}`);
  return true;
}

/** A dry run (POST /api/event/validate): how many of `text`'s events the instance would accept and refuse. */
async function dryRun(server, text) {
  const res = await fetch(`${server.url}/api/event/validate`, {
    method: "POST",
    headers: { ...WRITE_HEADERS, "cf-connecting-ip": "bench-schemas-check" },
    body: text,
  });
  const reply = await res.json();
  return {
    status: res.status,
    accepted: reply.accepted,
    refused: reply.refused,
    errors: reply.events?.find((e) => !e.accepted)?.errors,
  };
}

export async function run(ctx) {
  const { sizes: SIZES, log } = ctx;
  if (!["src/ingest/payload-schemas.ts", "src/payload-schemas.ts"].some((file) => existsSync(path.join(SNAP, file)))) {
    // An older commit (`--ref`): nothing to measure; the rest of a full run goes on.
    log("schemas: skipped: the code under test has no payload schemas (src/ingest/payload-schemas.ts, issue 9)");
    return null;
  }
  const out = {
    seconds: SIZES.ingestSeconds,
    passes: PASSES,
    schema: SCHEMA,
    cliChecked: cliAccepts(log),
    checks: [],
    rows: [],
  };

  const servers = {};
  for (const inst of INSTANCES) {
    const persist = path.join(STATE, `schemas-${inst.key}`);
    rmSync(persist, { recursive: true, force: true });
    prepareLocal(persist); // `npm run dev`'s migrations and seed
    if (inst.schema) registerSchema(persist); // before the start: nothing cached yet
    const server = await Server.start(`schemas-${inst.key}`, {
      persist,
      config: snapConfig(),
      argv: devCommand(),
      extra: inst.extra,
    });
    await warm(`${server.url}/api/event/?limit=1`, READ_HEADERS);
    servers[inst.key] = server;
    log(`schemas: ${inst.label} on ${server.url}`);
  }

  // The schema is in effect where it is registered, and every event of the load passes it.
  for (const inst of INSTANCES) {
    const good = await dryRun(servers[inst.key], body(500, "bench-schemas-check"));
    const bad = await dryRun(
      servers[inst.key],
      eventJson(0, "bench-schemas-check").replace('"path":"/"', '"path":"no-slash"'),
    );
    out.checks.push({ instance: inst.key, good, bad });
    if (good.status !== 200 || good.accepted !== 500 || good.refused !== 0)
      throw new Error(`schemas: ${inst.label}: the load's body is not accepted whole: ${JSON.stringify(good)}`);
    if (inst.schema !== (bad.refused === 1))
      throw new Error(
        `schemas: ${inst.label}: an event breaking the schema was ${bad.refused === 1 ? "refused" : "accepted"}: ${JSON.stringify(bad)}`,
      );
  }
  log(
    'schemas: 500 load events accepted by every instance; an event with path "no-slash" refused only where the schema is registered',
  );

  const totals = new Map();
  for (const load of LOADS) {
    for (let pass = 0; pass < PASSES; pass++) {
      const order = pass % 2 === 0 ? INSTANCES : [...INSTANCES].reverse();
      for (const inst of order) {
        const server = servers[inst.key];
        log(`schemas: ${load.label}, ${inst.label}, pass ${pass + 1}, ${out.seconds} s`);
        const before = await countVisible(server.url);
        const m = await measureLoad(server, `${load.label}, ${inst.label}`, {
          connections: CONNECTIONS,
          duration: out.seconds,
          method: "POST",
          headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
          body: body(load.n),
          idReplacement: true,
        });
        // Until the consumer has stored what was accepted, so the next load runs on a quiet machine.
        const stored = (await settle(server.url)) - before;
        const cpuDrained = server.cpuSeconds() - (m.cpuAtEnd - m.cpuLoad);
        const accepted = (m.statuses[202] ?? 0) * load.n;
        const key = `${load.key}/${inst.key}`;
        const t = totals.get(key) ?? {
          load: load.key,
          loadLabel: load.label,
          instance: inst.key,
          instanceLabel: inst.label,
          seconds: 0,
          accepted: 0,
          stored: 0,
          cpu: 0,
          cpuProxy: 0,
          cpuRuntime: 0,
          cpuDrained: 0,
          p50: [],
          p99: [],
          perPass: [],
          statuses: {},
          errors: 0,
        };
        t.seconds += m.seconds;
        t.accepted += accepted;
        t.stored += stored;
        t.cpu += m.cpuLoad;
        t.cpuProxy += m.cpuProxy;
        t.cpuRuntime += m.cpuRuntime;
        t.cpuDrained += cpuDrained;
        t.p50.push(m.p50);
        t.p99.push(m.p99);
        t.perPass.push(accepted / m.seconds);
        t.errors += m.errors + m.timeouts;
        for (const [s, n] of Object.entries(m.statuses)) t.statuses[s] = (t.statuses[s] ?? 0) + n;
        totals.set(key, t);
      }
    }
  }
  out.reloads = Object.fromEntries(INSTANCES.map((i) => [i.key, servers[i.key].reloads()]));
  for (const s of Object.values(servers)) await s.stop();

  out.rows = [...totals.values()].map((t) => ({
    load: t.load,
    loadLabel: t.loadLabel,
    instance: t.instance,
    instanceLabel: t.instanceLabel,
    eventsPerSec: t.accepted / t.seconds,
    perPass: t.perPass,
    p50: Math.max(...t.p50),
    p99: Math.max(...t.p99),
    cpuPerEventUs: (t.cpu / Math.max(1, t.accepted)) * 1e6,
    proxyPerEventUs: (t.cpuProxy / Math.max(1, t.accepted)) * 1e6,
    runtimePerEventUs: (t.cpuRuntime / Math.max(1, t.accepted)) * 1e6,
    drainedPerEventUs: (t.cpuDrained / Math.max(1, t.accepted)) * 1e6,
    accepted: t.accepted,
    stored: t.stored,
    statuses: t.statuses,
    errors: t.errors,
  }));
  for (const r of out.rows) {
    const base = out.rows.find((x) => x.load === r.load && x.instance === "none");
    r.vsNone = { rate: r.eventsPerSec / base.eventsPerSec, cpu: r.cpuPerEventUs / base.cpuPerEventUs };
  }
  return out;
}

const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const st = (s) =>
  s
    ? Object.entries(s)
        .map(([k, v]) => `${k}: ${n0(v)}`)
        .join(", ")
    : "—";

export function render(p) {
  const out = [];
  out.push("#### Payload schemas — ingestion with a JSON Schema per event type (issue 9)");
  out.push("");
  out.push(
    "| load | instance | events accepted/s | per pass | p50 / p99 ms (worst pass) | workerd CPU µs per event during load (proxy + runtime) | … until drained | × no schema: events/s, CPU | statuses | events stored / accepted |",
  );
  out.push("|---|---|---:|---:|---:|---:|---:|---:|---|---:|");
  for (const r of p.rows) {
    out.push(
      `| ${r.loadLabel} | ${r.instanceLabel} | ${n0(r.eventsPerSec)} | ${r.perPass.map(n0).join(", ")} | ${r.p50} / ${r.p99} | ` +
        `${n0(r.cpuPerEventUs)} (${n0(r.proxyPerEventUs)} + ${n0(r.runtimePerEventUs)}) | ${n0(r.drainedPerEventUs)} | ` +
        `${r.instance === "none" ? "—" : `${r.vsNone.rate.toFixed(2)}×, ${r.vsNone.cpu.toFixed(2)}×`} | ${st(r.statuses)}${r.errors ? `, errors ${n0(r.errors)}` : ""} | ${n0(r.stored)} / ${n0(r.accepted)} |`,
    );
  }
  out.push("");
  const ratio = (load) => {
    const on = p.rows.find((r) => r.load === load && r.instance === "on");
    const off = p.rows.find((r) => r.load === load && r.instance === "off");
    return on && off
      ? `${(on.eventsPerSec / off.eventsPerSec).toFixed(2)}× the events/s, ${(on.cpuPerEventUs / off.cpuPerEventUs).toFixed(2)}× the CPU per event`
      : "—";
  };
  out.push(`Schema cache on vs off: 500-event POSTs ${ratio("batch500")}; single-event POSTs ${ratio("single")}.`);
  const n = { batch500: 500, single: 1 };
  out.push(
    "",
    `Events stored beyond those counted accepted, in whole POSTs: ${p.rows.map((r) => `${r.load === "single" ? "1" : "500"}-event ${r.instance} ${n0((r.stored - r.accepted) / n[r.load])}`).join(", ")} ` +
      `(requests still in flight when a load stopped: up to 50 per pass; their 202s are not counted above).`,
  );
  out.push("");
  const reloaded = Object.entries(p.reloads ?? {}).filter(([, n]) => n > 0);
  if (reloaded.length)
    out.push(
      `**wrangler reloaded the Worker during this phase** (a watched file changed): ${reloaded.map(([k, n]) => `${k} ${n}×`).join(", ")}; the loads around it are suspect.`,
      "",
    );
  out.push(
    `Three instances as \`npm run dev\` runs them, side by side, each its own --persist-to: no schema; a schema for the load's one event type ` +
      `(\`${JSON.stringify(p.schema)}\`${p.cliChecked ? ", which `npm run schemas -- check` accepts" : ""}, inserted into the local D1 before the start) with ` +
      `PAYLOAD_SCHEMA_CACHE_SECONDS 60 (default); the same with \`--var PAYLOAD_SCHEMA_CACHE_SECONDS:0\`. 50 connections, a client per request, ` +
      `the README's example event (×500 with distinct \`data.seq\`), ${p.passes} interleaved passes of ${p.seconds} s per load, the instances' order ` +
      `reversed every other pass, each load followed by waiting until the consumer has stored what was accepted; events/s and CPU summed over the passes. ` +
      `Before the loads, a dry run (POST /api/event/validate) of the 500-event body is accepted whole by every instance and an event with \`"path":"no-slash"\` ` +
      `is refused only by the two with the schema. CPU: utime+stime of the instance's workerd processes (wrangler's proxy + the runtime that runs the Worker, ` +
      `its Queue consumer and D1), per accepted event; "until drained" adds the consumer's work after the load.`,
  );
  out.push("");
  return out;
}
