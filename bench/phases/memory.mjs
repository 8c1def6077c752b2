// Phase `memory` (issue 7 item 17), opt-in: `npm run bench -- --only memory [--minutes N]` (default 10).
// The Worker as `npm run dev` runs it under sustained single-event POSTs from a fixed set of 1,000
// client addresses, sampling every 10 s: resident memory of its workerd processes and of wrangler,
// the Worker isolate's JS heap (DevTools protocol), and the local D1 file. Then the trivial Worker under
// the same requests for half as long (it serves about twice as many per second) as the control.
// `--control-minutes M` sets the control's length (0: none); `--clients each` gives every request a new
// client address instead (a new rate-limiter key per request, as the ingest table's first row).
import { rmSync, statSync } from "node:fs";
import path from "node:path";
import { inspect } from "../lib/inspector.mjs";
import {
  body,
  cannon,
  countVisible,
  poolAddress,
  READ_HEADERS,
  uniqueAddress,
  WRITE_HEADERS,
  warm,
} from "../lib/load.mjs";
import { d1Files, devCommand, prepareLocal, Server, STATE, sleep, snapConfig } from "../lib/servers.mjs";

const SAMPLE_SECONDS = 10;
const IDLE_SAMPLES = 3; // after the load: 3 × 10 s without requests

const minutesOf = ({ quick, flags }) => Number(flags.minutes ?? (quick ? 1 : 10));
const controlMinutesOf = (ctx) => Number(ctx.flags.controlMinutes ?? minutesOf(ctx) / 2);
/** What this phase adds to the run's time budget. */
export const budgetMinutes = (ctx) => minutesOf(ctx) + controlMinutesOf(ctx) + 3;

export async function run(ctx) {
  const { log, trivialConfig } = ctx;
  const minutes = minutesOf(ctx);
  const controlMinutes = controlMinutesOf(ctx);
  const eachClient = ctx.flags.clients === "each";
  // A fixed set of 1,000 returning clients, or (--clients each) a new one per request.
  const client = eachClient ? uniqueAddress : (i) => poolAddress(i);

  const persist = path.join(STATE, "memory-real");
  rmSync(persist, { recursive: true, force: true });
  prepareLocal(persist);
  const real = await Server.start("memory-real", { persist, config: snapConfig(), argv: devCommand() });
  await warm(`${real.url}/api/event/?limit=1`, READ_HEADERS);
  log(
    `memory: real Worker on ${real.url}, ${minutes} min of single-event POSTs from ${eachClient ? "a new client per request" : "1,000 clients"}, a sample every ${SAMPLE_SECONDS} s`,
  );
  const realRun = await sustain(real, { seconds: minutes * 60, persist, stored: true, client, log });
  await real.stop();
  if (controlMinutes <= 0)
    return { minutes, controlMinutes, eachClient, sampleSeconds: SAMPLE_SECONDS, real: realRun, control: null };

  const trivialPersist = path.join(STATE, "memory-trivial");
  rmSync(trivialPersist, { recursive: true, force: true });
  const trivial = await Server.start("memory-trivial", { persist: trivialPersist, config: trivialConfig });
  await warm(`${trivial.url}/`, {});
  log(`memory: control, trivial Worker on ${trivial.url}, ${controlMinutes} min of the same requests`);
  const control = await sustain(trivial, { seconds: controlMinutes * 60, client, log });
  await trivial.stop();

  return { minutes, controlMinutes, eachClient, sampleSeconds: SAMPLE_SECONDS, real: realRun, control };
}

/** One sustained load with samples every SAMPLE_SECONDS, then IDLE_SAMPLES samples without load. */
async function sustain(server, { seconds, persist, stored = false, client, log }) {
  const inspector = await inspect(server).catch((err) => {
    log(`memory: no JS heap figures for ${server.name}: ${err.message}`);
    return null;
  });
  const t0 = performance.now();
  let sent = 0;
  const samples = [];
  const sample = async (phase) => {
    const heap = inspector ? await inspector.heapUsage().catch(() => null) : null;
    samples.push({
      t: (performance.now() - t0) / 1000,
      phase,
      sent,
      stored: stored ? await countVisible(server.url) : null,
      rss: server.rssByRole(),
      heapUsed: heap?.usedSize ?? null,
      heapTotal: heap?.totalSize ?? null,
      embedder: heap?.embedderHeapUsedSize ?? null,
      backing: heap?.backingStorageSize ?? null,
      d1Bytes: persist ? d1Bytes(persist) : null,
      reloads: server.reloads(),
    });
  };
  await sample("start");
  let done = false;
  const load = cannon(`${server.url}/api/event/`, {
    connections: 50,
    duration: seconds,
    method: "POST",
    headers: WRITE_HEADERS,
    body: body(1),
    idReplacement: true,
    requestHeaders: (i) => {
      sent = i + 1;
      return { "cf-connecting-ip": client(i) };
    },
  }).finally(() => (done = true));
  let next = SAMPLE_SECONDS;
  while (!done) {
    await Promise.race([sleep(Math.max(0, next * 1000 - (performance.now() - t0))), load]);
    if (done) break;
    await sample("load");
    next += SAMPLE_SECONDS;
    if (Math.round(next) % 60 === 0) {
      const s = samples[samples.length - 1];
      log(
        `memory: ${server.name} ${s.t.toFixed(0)} s, ${s.sent} requests, RSS runtime ${s.rss.runtime.toFixed(0)} MiB, proxy ${s.rss.proxy.toFixed(0)} MiB, heap ${s.heapUsed === null ? "?" : (s.heapUsed / 1048576).toFixed(1)} MiB`,
      );
    }
  }
  const r = await load;
  await sample("end of load");
  for (let i = 0; i < IDLE_SAMPLES; i++) {
    await sleep(SAMPLE_SECONDS * 1000);
    await sample("idle");
  }
  inspector?.close();
  return {
    requests: r.requests,
    seconds: r.seconds,
    reqPerSec: r.reqPerSec,
    p50: r.p50,
    p99: r.p99,
    statuses: r.statuses,
    errors: r.errors,
    samples,
  };
}

/** The local D1 database files (with WAL and shared memory), bytes. */
function d1Bytes(persist) {
  let n = 0;
  for (const f of d1Files(persist)) {
    for (const suffix of ["", "-wal", "-shm"]) {
      try {
        n += statSync(f + suffix).size;
      } catch {}
    }
  }
  return n;
}

const mib = (b) => (b === null || b === undefined ? "—" : (b / 1048576).toFixed(1));
const n0 = (x) => (x === null || x === undefined ? "—" : Math.round(x).toLocaleString("en"));

/** Growth per 100,000 requests between the first sample after a minute of load and the end of the load (least squares). */
function slope(samples, get) {
  const pts = samples
    .filter((s) => s.phase === "load" && s.t >= 60)
    .map((s) => [s.sent, get(s)])
    .filter(([, y]) => y !== null);
  if (pts.length < 3) return null;
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
  const num = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const den = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return den ? (num / den) * 100_000 : null;
}

export function render(m) {
  const out = [];
  out.push(
    `#### Memory under sustained load (issue 7 item 17) — ${m.minutes} min, single-event POSTs, 50 connections, ${m.eachClient ? "a new client address per request" : "1,000 client addresses"}`,
  );
  out.push("");
  const table = (run, withD1) => {
    out.push(
      `| t s | phase | requests sent | ${withD1 ? "events stored | " : ""}RSS MiB: Worker runtime (workerd) | proxy (workerd) | wrangler (node) | JS heap used / total MiB | ${withD1 ? "D1 file MiB |" : ""}`,
    );
    out.push(`|---:|---|---:|${withD1 ? "---:|" : ""}---:|---:|---:|---:|${withD1 ? "---:|" : ""}`);
    // Every minute of load, and every sample around it.
    const shown = run.samples.filter((s, i) => s.phase !== "load" || Math.round(s.t) % 60 < m.sampleSeconds || i === 1);
    for (const s of shown) {
      out.push(
        `| ${s.t.toFixed(0)} | ${s.phase}${s.reloads ? ` (**wrangler reloaded the Worker ${s.reloads}×** so far)` : ""} | ${n0(s.sent)} | ${withD1 ? `${n0(s.stored)} | ` : ""}${s.rss.runtime.toFixed(0)} | ${s.rss.proxy.toFixed(0)} | ${s.rss.wrangler.toFixed(0)} | ` +
          `${mib(s.heapUsed)} / ${mib(s.heapTotal)} | ${withD1 ? `${mib(s.d1Bytes)} |` : ""}`,
      );
    }
    out.push("");
    const g = (get) => {
      const v = slope(run.samples, get);
      return v === null ? "—" : `${v >= 0 ? "+" : ""}${v.toFixed(1)}`;
    };
    out.push(
      `${n0(run.requests)} requests in ${run.seconds} s (${n0(run.reqPerSec)} req/s, p50 ${run.p50} / p99 ${run.p99} ms; ${Object.entries(
        run.statuses,
      )
        .map(([k, v]) => `${k}: ${n0(v)}`)
        .join(", ")}). ` +
        `Growth per 100,000 requests after the first minute (least squares over the samples): runtime RSS ${g((s) => s.rss.runtime)} MiB, proxy RSS ${g((s) => s.rss.proxy)} MiB, ` +
        `wrangler RSS ${g((s) => s.rss.wrangler)} MiB, JS heap used ${g((s) => (s.heapUsed === null ? null : s.heapUsed / 1048576))} MiB${withD1 ? `, D1 file ${g((s) => (s.d1Bytes === null ? null : s.d1Bytes / 1048576))} MiB` : ""}.`,
    );
    out.push("");
  };
  out.push("The Worker as `npm run dev` runs it:");
  out.push("");
  table(m.real, true);
  if (m.control) {
    out.push(
      `Control: the trivial Worker (\`return new Response("ok")\`, no bindings) under the same requests for ${m.controlMinutes} min:`,
    );
    out.push("");
    table(m.control, false);
  }
  out.push(
    "RSS: VmRSS of each process under the instance's wrangler (/proc/<pid>/status). JS heap: V8's Runtime.getHeapUsage of the Worker's isolate " +
      "over the DevTools protocol on wrangler's --inspector-port. D1 file: the local database under --persist-to with its -wal and -shm.",
  );
  out.push("");
  return out;
}
