// Phase `quiet`: the same single-event ingest with wrangler's per-request log lines off (--log-level warn).
import path from "node:path";
import { body, CONNECTIONS, MANY_CLIENTS, measureLoad, READ_HEADERS, WRITE_HEADERS, warm } from "../lib/load.mjs";
import { devCommand, prepareLocal, Server, STATE, snapConfig } from "../lib/servers.mjs";

export async function run(ctx) {
  const { sizes: SIZES, log, R, trivialConfig } = ctx;
  const persist = path.join(STATE, "real");
  prepareLocal(persist); // as `npm run dev` does on every start: pending migrations, the (idempotent) seed
  const extra = ["--log-level", "warn"];
  const trivial = await Server.start("trivial-quiet", {
    persist: path.join(STATE, "trivial"),
    config: trivialConfig,
    extra,
  });
  const real = await Server.start("real-quiet", { persist, config: snapConfig(), argv: devCommand(), extra });
  await warm(`${real.url}/api/event/?limit=1`, READ_HEADERS);
  const D = SIZES.ingestSeconds;
  for (const [server, label, url] of [
    [trivial, "trivial Worker, --log-level warn", `${trivial.url}/api/event/`],
    [real, "single-event POST, a client per request, --log-level warn", undefined],
  ]) {
    log(`quiet: ${label}, ${D} s`);
    const m = await measureLoad(server, label, {
      url,
      connections: CONNECTIONS,
      duration: D,
      method: "POST",
      headers: { ...WRITE_HEADERS, ...MANY_CLIENTS },
      body: body(1),
      idReplacement: true,
    });
    const ok = (m.statuses[202] ?? 0) + (m.statuses[200] ?? 0);
    R.ingest.push({
      key: server === real ? "single-quiet" : "trivial-quiet",
      label,
      perRequest: 1,
      seconds: m.seconds,
      requests: m.requests,
      reqPerSec: m.reqPerSec,
      acceptedReqPerSec: ok / m.seconds,
      eventsPerSec: ok / m.seconds,
      accepted: ok,
      p50: m.p50,
      p99: m.p99,
      statuses: m.statuses,
      errors: m.errors,
      cpuLoad: m.cpuLoad,
      cpuPerEventUs: (m.cpuLoad / Math.max(1, ok)) * 1e6,
      proxyPerEventUs: (m.cpuProxy / Math.max(1, ok)) * 1e6,
      runtimePerEventUs: (m.cpuRuntime / Math.max(1, ok)) * 1e6,
    });
  }
  await real.stop();
  await trivial.stop();
}
