// Phase `keycache` (issue 3): single-event POSTs with the per-isolate key cache (KEY_CACHE_SECONDS=60,
// the default) and without it (KEY_CACHE_SECONDS=0: one D1 read per request), interleaved in two passes.
import path from "node:path";
import { body, CONNECTIONS, MANY_CLIENTS, measureLoad, READ_HEADERS, WRITE_HEADERS, warm } from "../lib/load.mjs";
import { devCommand, prepareLocal, Server, STATE, snapConfig } from "../lib/servers.mjs";

export async function run(ctx) {
  const { sizes: SIZES, log, R } = ctx;
  const persist = path.join(STATE, "real");
  prepareLocal(persist); // as `npm run dev` does on every start: pending migrations, the (idempotent) seed
  const persistNoCache = path.join(STATE, "real-nokeycache");
  prepareLocal(persistNoCache);
  const cached = await Server.start("real-keycache", { persist, config: snapConfig(), argv: devCommand() });
  const uncached = await Server.start("real-nokeycache", {
    persist: persistNoCache,
    config: snapConfig(),
    argv: devCommand(),
    extra: ["--var", "KEY_CACHE_SECONDS:0"],
  });
  for (const s of [cached, uncached]) await warm(`${s.url}/api/event/?limit=1`, READ_HEADERS);
  const D = SIZES.ingestSeconds;
  const totals = new Map();
  for (let pass = 0; pass < 2; pass++) {
    for (const [server, label] of [
      [cached, "single-event POST, key cache on (60 s, default)"],
      [uncached, "single-event POST, key cache off (D1 read per request)"],
    ]) {
      log(`keycache: ${label}, pass ${pass + 1}, ${D} s`);
      const m = await measureLoad(server, label, {
        connections: CONNECTIONS,
        duration: D,
        method: "POST",
        headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
        body: body(1),
        idReplacement: true,
      });
      const ok = m.statuses[202] ?? 0;
      const t = totals.get(label) ?? { label, seconds: 0, accepted: 0, requests: 0, cpu: 0, p50: [], p99: [] };
      t.seconds += m.seconds;
      t.accepted += ok;
      t.requests += m.requests;
      t.cpu += m.cpuLoad;
      t.p50.push(m.p50);
      t.p99.push(m.p99);
      totals.set(label, t);
    }
  }
  R.keyCache = [...totals.values()].map((t) => ({
    label: t.label,
    acceptedReqPerSec: t.accepted / t.seconds,
    p50: Math.max(...t.p50),
    p99: Math.max(...t.p99),
    cpuPerEventUs: (t.cpu / Math.max(1, t.accepted)) * 1e6,
  }));
  await uncached.stop();
  await cached.stop();
}
