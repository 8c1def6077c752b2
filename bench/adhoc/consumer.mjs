// End to end, one version at a time: ROUNDS rounds of N events in 500-event POSTs (10 at a time, a
// client address each), each timed until GET's count shows them; the last round with the Worker
// isolate's CPU profile. The queue's batches and their wall times are wrangler's "QUEUE" log lines.
//   node bench/adhoc/consumer.mjs [tree|<commit>] (env N=20000 ROUNDS=4 NOW=1 for events dated now)
import { readFileSync } from "node:fs";
import { postBatches, waitForCount } from "../lib/load.mjs";
import { mixedBody, profiler, start, version } from "./common.mjs";

const v = version(process.argv[2] ?? "tree");
const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const now = Boolean(process.env.NOW);
const server = await start(v);
const prof = await profiler(server);
let stored = 0;
for (let r = 0; r < ROUNDS; r++) {
  if (r === ROUNDS - 1) await prof.start();
  const t0 = Date.now();
  const posted = await postBatches(server.url, {
    total: N,
    perRequest: 500,
    concurrency: 10,
    runId: `adhoc-${r}`,
    clientPerRequest: true,
    makeBody: (n, id) => mixedBody(n, id, now),
  });
  const w = await waitForCount(server.url, stored + posted.accepted, { intervalMs: 100 });
  stored = w.count;
  console.log(`${v.key} round ${r}: ${N} events stored in ${w.at - t0} ms`);
}
console.log(await prof.stop(`consumer-${v.key}`));
console.log(
  readFileSync(server.log, "utf8")
    .split("\n")
    .filter((l) => l.includes("QUEUE the-eye-events "))
    .join("\n"),
);
await server.stop();
process.exit(0);
