// Phase `context` (issue 11): what edge context costs at ingestion and in D1. Two instances of the Worker
// as `npm run dev` runs them, side by side: the dev application with context on (the default) and with
// context off (`npm run keys -- set-context app_dev off`, applied to the local D1 before the start).
// 500-event and single-event POSTs, loads interleaved, the order reversed every other pass. Every request
// carries a User-Agent and a page with UTM parameters, and its own context (a city per request, through
// the development stand-in for request.cf): the worst case for the hot path (a User-Agent parse per
// request, the isolate's cache never hit) and for D1 (a contexts row per request). Then the instances
// stop and their D1 files are measured with dbstat: bytes per event by table and index, on vs off.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import {
  body,
  CONNECTIONS,
  countVisible,
  MANY_CLIENTS,
  measureLoad,
  READ_HEADERS,
  settle,
  WRITE_HEADERS,
  warm,
} from "../lib/load.mjs";
import { childEnv, d1Files, devCommand, prepareLocal, ROOT, Server, SNAP, STATE, snapConfig } from "../lib/servers.mjs";
import { sqliteTask } from "../lib/sqlite.mjs";

/** Minutes this phase adds to the run's budget. */
export const budgetMinutes = ({ quick }) => (quick ? 2 : 5);

const PASSES = 2;
const INSTANCES = [
  { key: "on", label: "context on (default)", mode: "on" },
  { key: "off", label: "context off", mode: "off" },
];
const LOADS = [
  { key: "batch500", label: "500-event POST", n: 500 },
  { key: "single", label: "single-event POST", n: 1 },
];
const PAGE = "https://shop.example/spring?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale";
const REFERRER = "https://news.example.org/articles/42";
/** A browser's User-Agent, made distinct per request (autocannon replaces [<id>]) so no parse is cached. */
const UA =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1 bench/[<id>]";
/** request.cf as Cloudflare hands it, through the development stand-in header; a city per request. */
const CF = JSON.stringify({
  country: "DE",
  region: "Berlin",
  city: "Berlin-[<id>]",
  timezone: "Europe/Berlin",
  continent: "EU",
  asn: 3320,
});

const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** Sets the dev application's context as `npm run keys -- set-context` does, in `persist`'s local D1. */
function setContext(persist, mode) {
  const sql = `UPDATE applications SET context = ${quote(mode)} WHERE id = 'app_dev'`;
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
  if (r.status !== 0) throw new Error(`setting the context mode failed:\n${r.stdout}\n${r.stderr}`);
}

async function firstContext(server) {
  const res = await fetch(`${server.url}/api/event/?limit=1`, { headers: READ_HEADERS });
  return (await res.json()).results?.[0]?.context ?? null;
}

export async function run(ctx) {
  const { sizes: SIZES, log } = ctx;
  if (!["src/ingest/context.ts", "src/context.ts"].some((file) => existsSync(path.join(SNAP, file)))) {
    log("context: skipped: the code under test has no edge context (src/ingest/context.ts, issue 11)");
    return null;
  }
  const out = { seconds: SIZES.ingestSeconds, passes: PASSES, rows: [], bytes: {}, checks: {} };
  const servers = {};
  const persists = {};
  for (const inst of INSTANCES) {
    const persist = path.join(STATE, `context-${inst.key}`);
    rmSync(persist, { recursive: true, force: true });
    prepareLocal(persist);
    setContext(persist, inst.mode);
    persists[inst.key] = persist;
    const server = await Server.start(`context-${inst.key}`, { persist, config: snapConfig(), argv: devCommand() });
    await warm(`${server.url}/api/event/?limit=1`, READ_HEADERS);
    servers[inst.key] = server;
    log(`context: ${inst.label} on ${server.url}`);
  }

  const headers = { ...WRITE_HEADERS, ...MANY_CLIENTS, "user-agent": UA, "x-eye-dev-cf": CF };
  const query = `?page=${encodeURIComponent(PAGE)}&referrer=${encodeURIComponent(REFERRER)}`;
  const totals = new Map();
  for (const load of LOADS) {
    for (let pass = 0; pass < PASSES; pass++) {
      const order = pass % 2 === 0 ? INSTANCES : [...INSTANCES].reverse();
      for (const inst of order) {
        const server = servers[inst.key];
        log(`context: ${load.label}, ${inst.label}, pass ${pass + 1}, ${out.seconds} s`);
        const before = await countVisible(server.url);
        const m = await measureLoad(server, `${load.label}, ${inst.label}`, {
          url: `${server.url}/api/event/${query}`,
          connections: CONNECTIONS,
          duration: out.seconds,
          method: "POST",
          headers,
          body: body(load.n),
          idReplacement: true,
        });
        const stored = (await settle(server.url)) - before;
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
        t.cpuDrained += server.cpuSeconds() - (m.cpuAtEnd - m.cpuLoad);
        t.p50.push(m.p50);
        t.p99.push(m.p99);
        t.perPass.push(accepted / m.seconds);
        t.errors += m.errors + m.timeouts;
        for (const [s, n] of Object.entries(m.statuses)) t.statuses[s] = (t.statuses[s] ?? 0) + n;
        totals.set(key, t);
      }
    }
  }
  for (const inst of INSTANCES) out.checks[inst.key] = await firstContext(servers[inst.key]);
  if (out.checks.on === null || out.checks.off !== null)
    throw new Error(`context: the instances did not store what their mode says: ${JSON.stringify(out.checks)}`);
  out.reloads = Object.fromEntries(INSTANCES.map((i) => [i.key, servers[i.key].reloads()]));
  for (const s of Object.values(servers)) await s.stop();

  for (const inst of INSTANCES) {
    const [file] = d1Files(persists[inst.key]);
    out.bytes[inst.key] = await sqliteTask("dbstatFile", { file });
  }

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
    drainedPerEventUs: (t.cpuDrained / Math.max(1, t.accepted)) * 1e6,
    accepted: t.accepted,
    stored: t.stored,
    statuses: t.statuses,
    errors: t.errors,
  }));
  for (const r of out.rows) {
    const base = out.rows.find((x) => x.load === r.load && x.instance === "off");
    r.vsOff = { rate: r.eventsPerSec / base.eventsPerSec, cpu: r.cpuPerEventUs / base.cpuPerEventUs };
  }
  return out;
}

const n0 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const n1 = (x) => (x === undefined || x === null || Number.isNaN(x) ? "—" : x >= 100 ? n0(x) : x.toFixed(1));

/** Bytes per event of each object that holds events or their context, in one instance's file. */
function byObject(b) {
  const names =
    /^(events|events_.*|sqlite_autoindex_events.*|contexts|contexts_body|context_counts.*|sqlite_autoindex_context_counts.*|event_counts.*|sqlite_autoindex_event_counts.*)$/;
  return Object.fromEntries(
    b.objects.filter((o) => names.test(o.name)).map((o) => [o.name, o.bytes / Math.max(1, b.rows)]),
  );
}

export function render(p) {
  const out = [];
  out.push("#### Edge context — ingestion and storage with context on vs off (issue 11)");
  out.push("");
  out.push(
    "| load | instance | events accepted/s | per pass | p50 / p99 ms (worst pass) | workerd CPU µs per event during load | … until drained | × off: events/s, CPU | statuses | events stored / accepted |",
  );
  out.push("|---|---|---:|---:|---:|---:|---:|---:|---|---:|");
  for (const r of p.rows) {
    out.push(
      `| ${r.loadLabel} | ${r.instanceLabel} | ${n0(r.eventsPerSec)} | ${r.perPass.map(n0).join(", ")} | ${r.p50} / ${r.p99} | ${n0(r.cpuPerEventUs)} | ${n0(r.drainedPerEventUs)} | ` +
        `${r.instance === "off" ? "—" : `${r.vsOff.rate.toFixed(2)}×, ${r.vsOff.cpu.toFixed(2)}×`} | ${Object.entries(
          r.statuses,
        )
          .map(([k, v]) => `${k}: ${n0(v)}`)
          .join(", ")}${r.errors ? `, errors ${n0(r.errors)}` : ""} | ${n0(r.stored)} / ${n0(r.accepted)} |`,
    );
  }
  out.push("");
  const on = p.bytes.on;
  const off = p.bytes.off;
  if (on && off) {
    const a = byObject(on);
    const b = byObject(off);
    out.push(
      `D1 bytes per stored event by table and index (SQLite's dbstat over each instance's file after the loads: whole pages, free space included): ` +
        `on ${n0(on.rows)} events (${n0(on.withContext)} with context, ${n0(on.contexts)} contexts rows of ${n1(on.contextBodyAvg)} B of JSON on average), off ${n0(off.rows)} events.`,
    );
    out.push("");
    out.push("| object | on B/event | off B/event | added |");
    out.push("|---|---:|---:|---:|");
    let sumA = 0;
    let sumB = 0;
    for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      sumA += a[name] ?? 0;
      sumB += b[name] ?? 0;
      out.push(`| ${name} | ${n1(a[name])} | ${n1(b[name])} | ${n1((a[name] ?? 0) - (b[name] ?? 0))} |`);
    }
    out.push(`| **all of the above** | **${n1(sumA)}** | **${n1(sumB)}** | **${n1(sumA - sumB)}** |`);
    out.push("");
  }
  const reloaded = Object.entries(p.reloads ?? {}).filter(([, n]) => n > 0);
  if (reloaded.length)
    out.push(
      `**wrangler reloaded the Worker during this phase**: ${reloaded.map(([k, n]) => `${k} ${n}×`).join(", ")}; the loads around it are suspect.`,
      "",
    );
  out.push(
    `Two instances as \`npm run dev\` runs them, side by side, each its own --persist-to, the dev application's context set on (default) or off in the local D1 ` +
      `before the start. 50 connections, a client per request, the README's example event (×500 with distinct \`data.seq\`), ${p.passes} interleaved passes of ` +
      `${p.seconds} s per load, the order reversed every other pass, each load followed by waiting until the consumer has stored what was accepted. Every request ` +
      `carries \`?page=\` with UTM parameters, \`?referrer=\`, a User-Agent and a stand-in request.cf that are distinct per request: a User-Agent parse per request ` +
      `and a contexts row per request, the worst case (real visitors share contexts; a 500-event POST shares one anyway). What was stored: on ` +
      `\`${JSON.stringify(p.checks.on)}\`, off \`${JSON.stringify(p.checks.off)}\`.`,
  );
  out.push("");
  return out;
}
