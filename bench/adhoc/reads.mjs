// GET p50 of five filter shapes (40 GETs each after 5 to warm, limit 100, with the count) on the
// local D1 that `consumer.mjs` left for the same version, and the Worker isolate's CPU profile of
// one shape (PROF, default category).
//   node bench/adhoc/reads.mjs [tree|<commit>]
import { READ_HEADERS } from "../lib/load.mjs";
import { profiler, start, version } from "./common.mjs";

const v = version(process.argv[2] ?? "tree");
const server = await start(v, { keep: true });
const prof = await profiler(server);
const shapes = {
  none: {},
  category: { category: "form" },
  name: { name: "name 7" },
  "category+name": { category: "form", name: "name 7" },
  session: { session_id: "adhoc-0-0-0" },
};
const profiled = process.env.PROF ?? "category";
for (const [shape, q] of Object.entries(shapes)) {
  const url = `${server.url}/api/event/?${new URLSearchParams({ ...q, limit: "100" })}`;
  for (let i = 0; i < 5; i++) await (await fetch(url, { headers: READ_HEADERS })).arrayBuffer();
  if (shape === profiled) await prof.start();
  const times = [];
  let answer;
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now();
    answer = await (await fetch(url, { headers: READ_HEADERS })).json();
    times.push(performance.now() - t0);
  }
  if (shape === profiled) console.log(await prof.stop(`reads-${v.key}-${shape}`));
  times.sort((a, b) => a - b);
  console.log(
    `${v.key} ${shape}: p50 ${times[20].toFixed(1)} ms, ${answer.results?.length} rows, count ${answer.count}`,
  );
}
await server.stop();
process.exit(0);
