// Phase `flood` (issue 7 item 7): real single-event traffic alone and beside a flood of random,
// never-valid write keys, on the code before the failed-auth limiter and on the code under test,
// both running at once, loads interleaved. `npm run bench -- --only flood [--flood-base <commit>]`.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { body, cannon, poolAddress, READ_HEADERS, uniqueAddress, WRITE_HEADERS, warm } from "../lib/load.mjs";
import { devCommand, exportCommit, prepareLocal, Server, STATE, snapConfig } from "../lib/servers.mjs";

/** The code before the fix: its src/request/auth.ts let every unknown key through to a D1 read. */
export const DEFAULT_BASE = "41dfa2f";

// Flood addresses, as CF-Connecting-IP values like poolAddress()'s (header values only: every request
// goes to 127.0.0.1); 198.19.0.0/16 is in the benchmarking range, 2001:db8::/32 the documentation range.
/** An attacker behind 20 addresses. */
const attacker = (i) => `198.19.0.${1 + (i % 20)}`;
/** A botnet: a new address, in a /64 of its own, for every request. */
const botnet = uniqueAddress;

// Each load: real traffic with or without a flood beside it, or a flood alone (what one bad request costs).
const LOADS = [
  { key: "alone", label: "real traffic alone", real: true },
  { key: "attacker", label: "real traffic + flood from 20 addresses", real: true, address: attacker },
  { key: "botnet", label: "real traffic + flood, a new address (/64) per request", real: true, address: botnet },
  { key: "attacker-only", label: "flood from 20 addresses, no real traffic", real: false, address: attacker },
  {
    key: "botnet-only",
    label: "flood, a new address (/64) per request, no real traffic",
    real: false,
    address: botnet,
  },
];

/**
 * @param {object} ctx  { sizes, log, flags } from bench/run.mjs
 * @returns the phase's results (R.flood)
 */
export async function run({ sizes, log, flags }) {
  const seconds = sizes.ingestSeconds;
  const floodRate = Number(flags.floodRate ?? 250);
  const baseRef = flags.floodBase ?? DEFAULT_BASE;

  // The code before the fix, from git, beside the code under test (the run's snapshot).
  const baseDir = path.join(STATE, "flood-base");
  const baseCommit = exportCommit(baseRef, baseDir);
  const instances = [];
  for (const [key, label, root, config] of [
    ["base", `before the fix (${baseCommit})`, baseDir, path.join(baseDir, "wrangler.toml")],
    ["now", "code under test", undefined, snapConfig()],
  ]) {
    const persist = path.join(STATE, `flood-${key}-d1`);
    rmSync(persist, { recursive: true, force: true });
    prepareLocal(persist, { config, root });
    const server = await Server.start(`flood-${key}`, { persist, config, argv: devCommand(root) });
    await warm(`${server.url}/api/event/?limit=1`, READ_HEADERS);
    instances.push({ key, label, server });
    log(`flood: ${label} on ${server.url}`);
  }

  const runs = [];
  let floodSeq = 0;
  for (let pass = 0; pass < 2; pass++) {
    for (const load of LOADS) {
      for (const inst of instances) {
        log(
          `flood: ${inst.label}, ${load.label}${load.address ? ` (flood at ${floodRate} req/s)` : ""}, pass ${pass + 1}, ${seconds} s`,
        );
        const cpu0 = inst.server.cpuByRole();
        const wrangler0 = inst.server.wranglerCpuSeconds();
        const real = load.real
          ? cannon(`${inst.server.url}/api/event/`, {
              connections: 50,
              duration: seconds,
              method: "POST",
              headers: WRITE_HEADERS,
              body: body(1),
              idReplacement: true,
              requestHeaders: (i) => ({ "cf-connecting-ip": poolAddress(i) }),
            })
          : null;
        const bad = load.address
          ? cannon(`${inst.server.url}/api/event/`, {
              connections: 50,
              duration: seconds,
              overallRate: floodRate,
              method: "POST",
              headers: { "content-type": "application/json" },
              body: body(1),
              idReplacement: true,
              requestHeaders: () => {
                const n = floodSeq++;
                return {
                  authorization: `Bearer eye_w_${randomBytes(16).toString("hex")}`,
                  "cf-connecting-ip": load.address(n),
                };
              },
            })
          : null;
        const [r, f] = await Promise.all([real, bad]);
        const cpu1 = inst.server.cpuByRole();
        runs.push({
          instance: inst.key,
          load: load.key,
          pass,
          seconds: (r ?? f).seconds,
          real: r && {
            accepted: r.statuses[202] ?? 0,
            requests: r.requests,
            p50: r.p50,
            p99: r.p99,
            statuses: r.statuses,
            errors: r.errors,
          },
          bad: f && {
            requests: f.requests,
            seconds: f.seconds,
            p50: f.p50,
            p99: f.p99,
            statuses: f.statuses,
            errors: f.errors,
          },
          cpu: {
            proxy: cpu1.proxy - cpu0.proxy,
            runtime: cpu1.runtime - cpu0.runtime,
            wrangler: inst.server.wranglerCpuSeconds() - wrangler0,
          },
          reloads: inst.server.reloads(),
        });
      }
    }
  }
  const reloads = Object.fromEntries(instances.map((i) => [i.key, i.server.reloads()]));
  for (const inst of instances) await inst.server.stop();

  // Both passes summed per instance and load; latency percentiles are the worse pass's.
  const rows = [];
  for (const inst of instances) {
    for (const load of LOADS) {
      const mine = runs.filter((x) => x.instance === inst.key && x.load === load.key);
      const secs = mine.reduce((n, x) => n + x.seconds, 0);
      const sum = (get) => mine.reduce((n, x) => n + get(x), 0);
      const worst = (get) => Math.max(...mine.map(get));
      const merge = (get) =>
        mine.reduce((acc, x) => {
          for (const [k, v] of Object.entries(get(x) ?? {})) acc[k] = (acc[k] ?? 0) + v;
          return acc;
        }, {});
      const badRequests = load.address ? sum((x) => x.bad.requests) : 0;
      rows.push({
        instance: inst.key,
        instanceLabel: inst.label,
        load: load.key,
        loadLabel: load.label,
        real: load.real,
        flood: !!load.address,
        realAcceptedPerSec: load.real ? sum((x) => x.real.accepted) / secs : null,
        realP50: load.real ? worst((x) => x.real.p50) : null,
        realP99: load.real ? worst((x) => x.real.p99) : null,
        realStatuses: load.real ? merge((x) => x.real.statuses) : null,
        badPerSec: load.address ? badRequests / sum((x) => x.bad.seconds) : null,
        badP50: load.address ? worst((x) => x.bad.p50) : null,
        badP99: load.address ? worst((x) => x.bad.p99) : null,
        badStatuses: load.address ? merge((x) => x.bad.statuses) : null,
        runtimeCores: sum((x) => x.cpu.runtime) / secs,
        proxyCores: sum((x) => x.cpu.proxy) / secs,
        wranglerCores: sum((x) => x.cpu.wrangler) / secs,
        // Flood alone: what one bad request costs the instance's processes.
        usPerBad:
          !load.real && badRequests
            ? {
                runtime: (sum((x) => x.cpu.runtime) / badRequests) * 1e6,
                proxy: (sum((x) => x.cpu.proxy) / badRequests) * 1e6,
                wrangler: (sum((x) => x.cpu.wrangler) / badRequests) * 1e6,
              }
            : null,
      });
    }
  }
  for (const r of rows.filter((x) => x.real)) {
    const alone = rows.find((x) => x.instance === r.instance && x.load === "alone");
    r.vsAlone = r.realAcceptedPerSec / alone.realAcceptedPerSec;
  }
  return { base: baseCommit, seconds, passes: 2, floodRate, rows, runs, reloads };
}

const n0 = (x) => (x === null || x === undefined || Number.isNaN(x) ? "—" : Math.round(x).toLocaleString("en"));
const st = (s) =>
  s
    ? Object.entries(s)
        .map(([k, v]) => `${k}: ${n0(v)}`)
        .join(", ")
    : "—";

/** The phase's tables, as markdown lines. */
export function render(f) {
  const out = [];
  out.push(`#### Key floods — real traffic beside random never-valid write keys (issue 7 item 7)`);
  out.push("");
  out.push(
    "| code | load | real accepted req/s | × alone | real p50 / p99 ms | real statuses | flood req/s | flood p50 / p99 ms | flood statuses | CPU, cores: Worker runtime + proxy + wrangler |",
  );
  out.push("|---|---|---:|---:|---:|---|---:|---:|---|---:|");
  for (const r of f.rows.filter((x) => x.real)) {
    out.push(
      `| ${r.instanceLabel} | ${r.loadLabel} | ${n0(r.realAcceptedPerSec)} | ${r.vsAlone.toFixed(2)}× | ${r.realP50} / ${r.realP99} | ${st(r.realStatuses)} | ` +
        `${n0(r.badPerSec)} | ${r.flood ? `${r.badP50} / ${r.badP99}` : "—"} | ${st(r.badStatuses)} | ${r.runtimeCores.toFixed(2)} + ${r.proxyCores.toFixed(2)} + ${r.wranglerCores.toFixed(2)} |`,
    );
  }
  out.push("");
  const reloaded = Object.entries(f.reloads ?? {}).filter(([, n]) => n > 0);
  if (reloaded.length)
    out.push(
      `**wrangler reloaded the Worker during this phase** (a watched file changed): ${reloaded.map(([k, n]) => `${k} ${n}×`).join(", ")}; the loads around it are suspect.`,
      "",
    );
  out.push("What one bad request costs (the flood alone, no real traffic):");
  out.push("");
  out.push(
    "| code | load | flood req/s | p50 / p99 ms | statuses | CPU µs per bad request: Worker runtime + proxy + wrangler |",
  );
  out.push("|---|---|---:|---:|---|---:|");
  for (const r of f.rows.filter((x) => !x.real)) {
    out.push(
      `| ${r.instanceLabel} | ${r.loadLabel} | ${n0(r.badPerSec)} | ${r.badP50} / ${r.badP99} | ${st(r.badStatuses)} | ${n0(r.usPerBad.runtime)} + ${n0(r.usPerBad.proxy)} + ${n0(r.usPerBad.wrangler)} |`,
    );
  }
  out.push("");
  out.push(
    `Both instances run at once (\`npm run dev\`'s steps, each its own port and --persist-to); loads interleaved, ${f.passes} passes of ${f.seconds} s each, ` +
      `rates and CPU summed over the passes, latency the worse pass. Real traffic: single-event POSTs with the dev write key at 50 connections, ` +
      `1,000 client addresses (CF-Connecting-IP) taking turns. Flood: single-event POSTs with \`Bearer eye_w_<32 random hex>\`, a new key every request, ` +
      `paced at ${f.floodRate} req/s over 50 connections, from 20 addresses or from a new IPv6 /64 per request. CPU: utime+stime of the instance's ` +
      `processes during the load (cores: 1.00 = one core busy the whole time; the machine has 2).`,
  );
  out.push("");
  return out;
}
